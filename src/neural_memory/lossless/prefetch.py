"""Cache-line prefetch hint for numba code, and 64-byte aligned table allocation.

Why: the coder's adaptive tables (counters, mixer weights, APMs: tens of MB) do not fit in
the caches, and each binary decision reads a few dozen scattered lines from them. Most of
the coding time used to be spent waiting for those lines one decision after the other. The
addresses of the next decisions' lines are known early (the contexts are fixed once the
prediction is made), so the sample loop asks for them up front and the loads overlap.

A prefetch is only a hint: it reads nothing into the program and cannot change a result,
so encoder and decoder stay bit-exact whether or not a CPU honours it.
"""

from __future__ import annotations

import numpy as np
from llvmlite import binding, ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LINE = 64  # bytes in a cache line
# the intrinsic's name carries the pointer type: opaque ``ptr`` from LLVM 15 on, ``i8*`` before
_NAME = "llvm.prefetch.p0" if binding.llvm_version_info[0] >= 15 else "llvm.prefetch.p0i8"


@intrinsic
def prefetch(typingctx, arr, idx):
    """``prefetch(arr, i)``: hint that ``arr[i]`` (a 1-D array) will be read soon."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty, _ = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _NAME)
        # read access, high temporal locality, data cache
        builder.call(fn, [i8p, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


def aligned_full(shape: int | tuple[int, ...], value: int, dtype: type) -> np.ndarray:
    """An array filled with ``value`` whose data starts on a cache-line boundary, so that a
    table row sized to whole lines touches exactly those lines."""
    dt = np.dtype(dtype)
    count = int(np.prod(shape))
    raw = np.empty(count * dt.itemsize + LINE, dtype=np.uint8)
    off = (-raw.ctypes.data) % LINE
    out = raw[off : off + count * dt.itemsize].view(dt).reshape(shape)
    out[...] = value
    return out
