"""vlstudy: how the choice of pretraining data shapes vision-and-language transformers."""
__version__ = "0.1.0"
