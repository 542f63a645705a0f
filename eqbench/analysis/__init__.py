"""Analyses of arbitrary-scale SR methods, all through the method contract (eqbench.method):

  * equivariance - EQ_S = PSNR(phi(f(x; r); r), f(phi(x; r); r)) next to PSNR-Y, curves over scales;
  * cka          - linear CKA, full-batch (biased / unbiased) and minibatch (unbiased HSIC);
  * taps         - Gram matrices at a method's feature_taps across scales -> per-layer and layer x layer CKA;
  * flops        - FlopCounterMode with formulas for interpolation ops and module-declared extras;
  * memory       - peak inference memory (CUDA allocator, or CPU peak RSS in a fresh process);
  * profile      - parameters, FLOPs, latency (torch.utils.benchmark), memory; the ArbSR Table 3 shape;
  * plots        - heatmaps and curves as PNG + SVG.

This floor holds kernels only; their runner (jobs, results.json integration) is eqbench/run/analyses.py.

Submodules are imported on use, so `import eqbench` stays light.
"""
