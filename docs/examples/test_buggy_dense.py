"""The README's pytest example: a dense layer whose db is the mean over the batch instead of the
sum (buggy_dense.py), caught by the gradcheck marker
(`python -m pytest docs/examples/test_buggy_dense.py`)."""

import pytest


@pytest.mark.gradcheck(layer="buggy_dense.py:BuggyDense", shape=(5, 4), args={"out": 3})
def test_buggy_dense():
    pass
