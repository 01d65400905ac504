"""Data: dataset readers, image sets, splits and blur synthesis. numpy and OpenCV only, never torch.

train/, evaluate/ and bench/ read their images through here; train/ adds the torch side.
"""
