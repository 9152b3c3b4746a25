"""The sum over processes that the data-parallel C loop calls
(src_c/allsum.c), against a stand-in MPI library: Python functions made
callable from C with ctypes, with the prototypes of MPI_Reduce, MPI_Bcast
and MPI_Allreduce for int handles (MPICH) and for pointer handles (Open MPI,
the MPI ABI). They record every call and act as the other processes would,
so the tests see the arguments the C side passes (MPI_IN_PLACE at the root,
no receive buffer elsewhere, the handles unchanged, the buffer in pieces of
at most max_count) and what it does with a failing call. The real MPI
library is used under mpiexec in tests/test_distributed.py.
"""

import ctypes

import numpy as np
import pytest

from fastnn import _kernels

IN_PLACE = -1
COMM, DATATYPE, OP = 0x44000000, 0x4C00080B, 0x58000003  # int handles, as MPICH's
POINTER_COMM, POINTER_DATATYPE, POINTER_OP = 0x7F0012345678, 0x7F0012345700, 0x7F0012345780
ECOMM = _kernels.STATUS_CODES["ecomm"]


class FakeMPI:
    """MPI_Reduce, MPI_Bcast and MPI_Allreduce for handles of handle_bytes.
    The other processes' contribution to the sum is `others` (indexed like the
    buffer); a broadcast to a non-root process writes `root_result`."""

    def __init__(self, handle_bytes, buf, others, root_result=None, fail_at=None):
        handle = ctypes.c_int32 if handle_bytes == 4 else ctypes.c_ssize_t
        self.calls, self.calls_args, self.buf, self.others = [], [], buf, others
        self.root_result, self.fail_at = root_result, fail_at
        base = buf.ctypes.data

        def index(pointer):
            return (pointer - base) // buf.itemsize

        def view(pointer, count):
            return buf[index(pointer):index(pointer) + count]

        def result(name):
            self.calls.append(name)
            return 7 if self.fail_at == len(self.calls) else 0

        def reduce(send, recv, count, datatype, op, root, comm):
            self.calls_args.append(("reduce", send, recv, count, datatype, op, root, comm))
            status = result("reduce")
            if status == 0 and send == ctypes.c_void_p(IN_PLACE).value:  # the root adds
                i = index(recv)
                view(recv, count)[:] += self.others[i:i + count]
            return status

        def bcast(pointer, count, datatype, root, comm):
            self.calls_args.append(("bcast", pointer, count, datatype, root, comm))
            status = result("bcast")
            if status == 0 and self.root_result is not None:  # a non-root receives
                i = index(pointer)
                view(pointer, count)[:] = self.root_result[i:i + count]
            return status

        def allreduce(send, recv, count, datatype, op, comm):
            self.calls_args.append(("allreduce", send, recv, count, datatype, op, comm))
            status = result("allreduce")
            if status == 0:
                i = index(recv)
                view(recv, count)[:] += self.others[i:i + count]
            return status

        p, i = ctypes.c_void_p, ctypes.c_int
        self._functions = (  # kept alive while C holds their addresses
            ctypes.CFUNCTYPE(i, p, p, i, handle, handle, i, handle)(reduce),
            ctypes.CFUNCTYPE(i, p, i, handle, i, handle)(bcast),
            ctypes.CFUNCTYPE(i, p, p, i, handle, handle, handle)(allreduce))

    def addresses(self):
        return [ctypes.cast(f, ctypes.c_void_p).value for f in self._functions]


def _process_sum(fake, handle_bytes, dtype, allreduce, rank, max_count=0):
    comm, datatype, op = ((COMM, DATATYPE, OP) if handle_bytes == 4
                          else (POINTER_COMM, POINTER_DATATYPE, POINTER_OP))
    return _kernels.ProcessSum(*fake.addresses(), comm, datatype, op, IN_PLACE, handle_bytes,
                               np.dtype(dtype).itemsize, allreduce, rank, 3, max_count)


def _handles(handle_bytes):
    if handle_bytes == 4:
        return COMM, DATATYPE, OP
    return POINTER_COMM, POINTER_DATATYPE, POINTER_OP


def _as_handle(value, handle_bytes):
    """A handle as the stand-in received it (int32 handles arrive signed)."""
    return ctypes.c_int32(value).value if handle_bytes == 4 else value


HANDLE_SIZES = [4, ctypes.sizeof(ctypes.c_void_p)]


@pytest.mark.parametrize("handle_bytes", HANDLE_SIZES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("max_count, pieces", [(0, [8]), (3, [3, 3, 2]), (8, [8])])
def test_the_root_reduces_in_place_then_broadcasts(handle_bytes, dtype, max_count, pieces):
    buf = np.arange(8, dtype=dtype)
    others = np.linspace(1, 2, 8).astype(dtype)
    expected = buf + others
    fake = FakeMPI(handle_bytes, buf, others)
    status = _process_sum(fake, handle_bytes, dtype, False, 0, max_count).sum(buf)
    assert status == 0
    np.testing.assert_array_equal(buf, expected)
    comm, datatype, op = (_as_handle(h, handle_bytes) for h in _handles(handle_bytes))
    in_place = ctypes.c_void_p(IN_PLACE).value
    expected_calls, offset = [], 0
    for count in pieces:
        pointer = buf.ctypes.data + offset * buf.itemsize
        expected_calls += [("reduce", in_place, pointer, count, datatype, op, 0, comm),
                           ("bcast", pointer, count, datatype, 0, comm)]
        offset += count
    assert fake.calls_args == expected_calls


@pytest.mark.parametrize("handle_bytes", HANDLE_SIZES)
def test_another_process_sends_its_buffer_and_receives_the_roots(handle_bytes):
    buf = np.arange(5.0)
    root_result = np.full(5, 9.5)
    fake = FakeMPI(handle_bytes, buf, np.zeros(5), root_result=root_result)
    assert _process_sum(fake, handle_bytes, "float64", False, 2, 2).sum(buf) == 0
    np.testing.assert_array_equal(buf, root_result)
    comm, datatype, op = (_as_handle(h, handle_bytes) for h in _handles(handle_bytes))
    reduces = [c for c in fake.calls_args if c[0] == "reduce"]
    # the send buffer is the piece itself; the receive buffer is not given (None: NULL)
    assert [(c[1], c[2], c[3]) for c in reduces] == [
        (buf.ctypes.data, None, 2), (buf.ctypes.data + 16, None, 2),
        (buf.ctypes.data + 32, None, 1)]
    assert all(c[4:] == (datatype, op, 0, comm) for c in reduces)


@pytest.mark.parametrize("handle_bytes", HANDLE_SIZES)
def test_allreduce_sums_in_place_on_every_process(handle_bytes):
    buf = np.arange(7, dtype=np.float32)
    others = np.full(7, 0.25, dtype=np.float32)
    expected = buf + others
    fake = FakeMPI(handle_bytes, buf, others)
    assert _process_sum(fake, handle_bytes, "float32", True, 1, 4).sum(buf) == 0
    np.testing.assert_array_equal(buf, expected)
    comm, datatype, op = (_as_handle(h, handle_bytes) for h in _handles(handle_bytes))
    in_place = ctypes.c_void_p(IN_PLACE).value
    assert fake.calls_args == [
        ("allreduce", in_place, buf.ctypes.data, 4, datatype, op, comm),
        ("allreduce", in_place, buf.ctypes.data + 16, 3, datatype, op, comm)]


@pytest.mark.parametrize("fail_at, calls", [(1, ["reduce"]), (2, ["reduce", "bcast"]),
                                            (3, ["reduce", "bcast", "reduce"])])
def test_a_failing_call_stops_the_sum_with_its_code(fail_at, calls):
    buf = np.zeros(6)
    fake = FakeMPI(4, buf, np.ones(6), fail_at=fail_at)
    process_sum = _process_sum(fake, 4, "float64", False, 0, 3)
    assert process_sum.sum(buf) == ECOMM
    assert process_sum.error == 7
    assert fake.calls == calls  # nothing is called after the failure


def test_one_process_calls_nothing():
    buf = np.arange(4.0)
    fake = FakeMPI(4, buf, np.ones(4))
    functions = fake.addresses()
    one = _kernels.ProcessSum(*functions, COMM, DATATYPE, OP, IN_PLACE, 4, 8, False, 0, 1)
    assert one.sum(buf) == 0
    assert fake.calls == []
    np.testing.assert_array_equal(buf, np.arange(4.0))


def test_max_count_must_not_be_negative():
    with pytest.raises(ValueError, match="max_count"):
        _kernels.ProcessSum(1, 1, 1, 0, 0, 0, -1, 4, 8, False, 0, 2, -1)


@pytest.mark.parametrize("handle, size, expected", [
    (0x44000000, 4, 0x44000000),                      # MPICH's COMM_WORLD
    (0xFFFFFFFF84000001, 4, 0x84000001 - (1 << 32)),  # MPICH's Dup of it, as mpi4py reports
    (0x84000001, 4, 0x84000001 - (1 << 32)),
    (0x7F3A12345678, 8, 0x7F3A12345678),              # Open MPI's pointers
])
def test_handles_are_the_signed_integers_of_their_c_type(handle, size, expected):
    from fastnn._distributed import signed_handle
    assert signed_handle(handle, size) == expected
