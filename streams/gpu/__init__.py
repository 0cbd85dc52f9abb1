"""GPU samples (NVML, one per GPU per second) and the windows computed from them.

- ``samples``: a batch from the gpu topic to gpu_samples rows and dead letters (pure).
- ``windows``: gpu_windows, gpu_windows_1m and gpu_windows_1h, written as the
  fleet watermark closes them, and rewritten for late samples.

The batch itself is made durable by streams/worker/gpu_batches.py
(``GpuBatchWriter``), which then has the late windows rewritten.
"""
