"""Array views that Numba does not reference count, for the compiled time loop.

Numba counts references to every array it has allocated or received from Python: each time
such an array is bound to a new name (an inlined function's parameter, a slice, an item taken
out of ``args``) it increments an atomic counter, and decrements it when the name dies. Inside
the time loop that happens a dozen or more times per step once the SDE's functions are inlined
(about a third of the step time of ``sgd_sde`` on a small sphere model). A *borrowed* view is
the same array (same data, shape and strides) without an owner: binding it costs nothing.

A borrowed view must not outlive the array it was taken from. The kernel borrows its arguments
(alive for the whole call) and scratch arrays that it keeps alive until it returns.
"""

import numba as nb
from numba.core import cgutils, types

__all__ = ["borrowed", "keep_alive"]


def _strip_owner(context, builder, ty, value):
    if isinstance(ty, types.BaseTuple):  # (nested tuples, e.g. a model's parameters inside args)
        for i, item_ty in enumerate(ty.types):
            item = builder.extract_value(value, i)
            value = builder.insert_value(value, _strip_owner(context, builder, item_ty, item), i)
        return value
    if not isinstance(ty, types.Array):
        return value
    arr = context.make_array(ty)(context, builder, value=value)
    arr.meminfo = cgutils.get_null_value(arr.meminfo.type)
    arr.parent = cgutils.get_null_value(arr.parent.type)
    return arr._getvalue()


@nb.extending.intrinsic
def borrowed(typingctx, x):
    """``x`` without its owner: an array, or a tuple whose array items (in nested tuples too) are
    borrowed (others as they are)."""
    if not isinstance(x, (types.Array, types.BaseTuple)):
        return None

    def codegen(context, builder, sig, args):
        return _strip_owner(context, builder, x, args[0])
    return x(x), codegen


@nb.njit(inline="never")
def keep_alive(*arrays):
    """A use of ``arrays`` that the compiler keeps: owners stay alive (and allocated) until here."""
    return len(arrays)
