"""The pure core: the SidecarProxyConfig model, the leaf registry and its Istio mapping, the
table of workload kinds, resolution, warnings, render, diff. No I/O, no click, no API.
"""
