"""The lake: Icechunk repositories for carbonsink's stores."""
