# What PyPI's torch-neuronx 1.0 installs (a placeholder: the real package is on AWS's index).
raise ImportError("WRONG PACKAGE. Please install the package from Neuron Repository - pip.repos.neuron.amazonaws.com")
