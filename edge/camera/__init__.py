"""Camera (issue 6): reading label codes in camera frames.

:mod:`edge.camera.scan` is the pure core (an image array in, QR and Code 128 codes out;
zxing-cpp first, OpenCV as fallback) and :mod:`edge.camera.cli` the ``edge scan IMAGE``
command. Capture from a live camera and grading are not here yet.
"""
