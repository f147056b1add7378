"""The names a finetuning run's ``pretrained_on`` can take besides a pretraining set.

Below the study and its input checks, which both read them.
"""
NO_PRETRAINING = "none"     # direct training from the BERT stage (the paper's "-" rows)
RANDOM_INIT = "random"      # no BERT either (Supp. C.1)
RELEASED = "mmf:"           # "mmf:<file>": a released MMF checkpoint (the paper's zoo weights)
# Pretraining sets of generated text: name → (the dataset whose images are captioned, the
# captioning set the captioner learns from). CCG (§3.4): CC's images, a COCO captioner.
GENERATED = {"ccg": ("cc_small", "coco")}
