// pyconvx: CPU convolution, pooling and GEMM kernels. Include this one header.
#pragma once

#include "pyconvx/conv.hpp"
#include "pyconvx/gemm.hpp"
#include "pyconvx/nn.hpp"
#include "pyconvx/plan.hpp"
#include "pyconvx/pool.hpp"
#include "pyconvx/runtime.hpp"
#include "pyconvx/sample.hpp"
#include "pyconvx/shape.hpp"
#include "pyconvx/version.hpp"
