"""The paper's real datasets: official-format readers, region-feature readers, ``prepare``
(official files → the study's data root) and ``world export`` (the synthetic world written
in the official formats, to test that path end to end)."""
