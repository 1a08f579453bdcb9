"""Readers and writers of medical image formats; numpy/pydicom/SimpleITK/PyAV only, never torch."""
