"""Reference data: Global Carbon Budget releases and NOAA CO2 growth."""
