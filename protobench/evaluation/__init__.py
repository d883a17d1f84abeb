"""What a model is worth before any attack, computed once for ``evaluate``, the runner's
model reports and the model cards:

- accuracy.py: top-1 accuracy;
- quality.py: prototypes on the object, the JPEG experiment (Hoffmann et al. 2021), and the
  accuracy report that evaluate, the runner and the cards share (accuracy and JPEG experiment);
- realism.py: the clean top-1 similarity and the latent distance ratios beside Hoffmann et
  al.'s figures (docs/metrics.md);
- stability.py: the noise control of a model (uniform noise in the top-1 box) and the
  saturation of its latent space.
"""
