"""The stand-in's `torch_neuronx.experimental`: NeuronCore placement's name until Neuron 2.25 (since
then `torch_neuronx.set_neuron_cores`; this name still works and optimum-neuron still uses it)."""

from __future__ import annotations

import sys


def set_neuron_cores(trace, start_nc: int = -1, nc_count: int = -1):
    """torch_neuronx.set_neuron_cores (recorded as such)."""
    # the torch_neuronx imported now (the tests import it afresh for every test)
    return sys.modules[__package__].set_neuron_cores(trace, start_nc=start_nc, nc_count=nc_count)
