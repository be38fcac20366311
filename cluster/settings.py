"""Settings of the engines: where Dask work runs, where Ray runs, the Serve application.

Sections of the composed settings (:class:`pipelines.settings.Settings`: ``dask``, ``ray``,
``serve``); ``cluster`` takes them as they are, the library takes plain arguments.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    """A section of the settings: unknown keys are refused, assignments validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DaskSettings(Section):
    """Where Dask work runs: a LocalCluster (default), a scheduler, or a Kubernetes cluster.

    At most one of ``address``, ``kubernetes_spec`` and ``kubernetes_cluster`` is set; none
    means a LocalCluster on this machine.
    """

    address: str | None = Field(None, description="scheduler address, e.g. tcp://host:8786")
    kubernetes_spec: str | None = Field(
        None,
        description="DaskCluster manifest (YAML file) to create through the dask-kubernetes "
        "operator for the command, and delete after it",
    )
    kubernetes_cluster: str | None = Field(
        None, description="name of a running DaskCluster to connect to through the operator"
    )
    namespace: str | None = Field(
        None, description="Kubernetes namespace of the DaskCluster (default: the current one)"
    )
    n_workers: int | None = Field(None, gt=0, description="LocalCluster workers (default: cores)")
    threads_per_worker: int = Field(1, gt=0)
    memory_limit: str = Field("auto", description="per LocalCluster worker, e.g. 4GiB")

    @model_validator(mode="after")
    def _one_place(self) -> DaskSettings:
        places = ("address", "kubernetes_spec", "kubernetes_cluster")
        given = [k for k in places if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(
                f"dask.{given[0]} and dask.{given[1]} both say where Dask runs; set only one"
            )
        return self


class RaySettings(Section):
    """Ray: a local instance by default, or an existing cluster."""

    address: str | None = Field(
        None, description="existing Ray cluster, e.g. ray://head:10001 or auto (default: local)"
    )
    kuberay_cluster: str | None = Field(
        None,
        description="name of a KubeRay RayCluster or RayService to reach through its head "
        "service's Ray Client port",
    )
    namespace: str | None = Field(
        None, description="Kubernetes namespace of the KubeRay cluster (default: the pod's own)"
    )
    num_cpus: int | None = Field(None, gt=0, description="CPUs of a local Ray (default: all)")

    @model_validator(mode="after")
    def _one_place(self) -> RaySettings:
        if self.address and self.kuberay_cluster:
            raise ValueError("ray.address and ray.kuberay_cluster both say where Ray runs; set one")
        return self


class ServeSettings(Section):
    """The emulator's Ray Serve application (``carbonsink serve`` / ``infer``).

    ``max_batch_size``, ``batch_wait_timeout_s`` and ``max_ongoing_requests`` work together:
    a replica can only form batches of the requests it holds, so ``max_ongoing_requests``
    must be at least ``max_batch_size`` (checked).
    """

    variant: str = Field("mean-teacher", description="which trained emulators to serve")
    with_reference: bool = Field(
        False,
        description="also map the reference members when the lake has imported TRENDY/GOBM "
        "ones (by default those alone are the ensemble)",
    )
    layout: str = Field(
        "multiplexed",
        pattern=r"^(multiplexed|per-member)$",
        description="one emulator deployment for all members, or one per member",
    )
    num_replicas: int = Field(
        2,
        ge=1,
        description="emulator replicas (per deployment); two: a dead one never stalls a run",
    )
    num_cpus: float = Field(1.0, gt=0, description="CPUs per replica")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per replica (0: CPU inference)")
    max_batch_size: int = Field(8, ge=1, le=256, description="tiles per forward pass")
    batch_wait_timeout_s: float = Field(0.05, ge=0, le=10)
    fixed_passes: bool = Field(
        True,
        description="every forward pass on a fixed number of tiles (one on CPU, "
        "max_batch_size zero-padded on a GPU) so that a tile's bytes do not depend on its "
        "batch-mates; resumed runs are then byte-identical",
    )
    max_ongoing_requests: int = Field(16, ge=1, description="requests a replica holds")
    in_flight: int = Field(32, ge=1, description="tile requests infer keeps in flight")
    retries: int = Field(3, ge=0, description="attempts per failed tile key beyond the first")
    request_timeout_s: float = Field(
        120.0, gt=0, description="a tile request not answered by then is sent again"
    )
    http_host: str = Field("127.0.0.1", description="address of the HTTP route")
    http_port: int = Field(8000, ge=0, le=65535)
    max_box_cells: int = Field(
        1_000_000, ge=1, description="largest box (cells) the HTTP route maps per request"
    )
    max_json_cells: int = Field(40_000, ge=1, description="largest box answered as JSON")

    @model_validator(mode="after")
    def _batching(self) -> ServeSettings:
        if self.max_ongoing_requests < self.max_batch_size:
            raise ValueError(
                f"max_ongoing_requests ({self.max_ongoing_requests}) is below max_batch_size "
                f"({self.max_batch_size}): batches could never fill; raise it"
            )
        return self
