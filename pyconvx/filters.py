"""Classic 3x3 edge-detection kernels, for correlate2d and conv2d.

Correlating with a "_x" (vertical-edge) kernel responds positively where the image goes from
bright on the left to dark on the right; its transpose, the "_y" kernel, where it goes from bright
on top to dark below. Sobel weights the centre row more, Scharr more again (better rotational
symmetry). The arrays are read-only float32.
"""
import numpy as np

__all__ = ["vertical_edge", "horizontal_edge", "sobel_x", "sobel_y", "scharr_x", "scharr_y"]


def _kernel(rows):
    array = np.array(rows, dtype=np.float32)
    array.flags.writeable = False
    return array


vertical_edge = _kernel([[1, 0, -1], [1, 0, -1], [1, 0, -1]])
horizontal_edge = _kernel(vertical_edge.T)
sobel_x = _kernel([[1, 0, -1], [2, 0, -2], [1, 0, -1]])
sobel_y = _kernel(sobel_x.T)
scharr_x = _kernel([[3, 0, -3], [10, 0, -10], [3, 0, -3]])
scharr_y = _kernel(scharr_x.T)
