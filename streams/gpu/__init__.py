"""GPU samples (NVML, one per GPU per second) and the windows computed from them.

- ``samples``: a batch from the gpu topic to gpu_samples rows and dead letters (pure).
- ``writer``: makes a batch of samples durable, then rewrites late windows.
- ``windows``: gpu_windows, gpu_windows_1m and gpu_windows_1h, written as the
  fleet watermark closes them.
"""
