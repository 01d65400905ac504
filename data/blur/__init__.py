"""Blur made on purpose: the camera model, blur kernels, the named domains, sharp content, and pairs and videos
synthesised from them (on the fly or written to disk)."""
