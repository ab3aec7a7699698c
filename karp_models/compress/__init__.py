"""Making an image classifier smaller, and what it costs: magnitude pruning (unstructured and by
channel), an optional short fine-tune through the one Trainer, int8 quantisation, and for every
point its accuracy, size on disk, CPU latency and how its explanations moved.

Pruning is torch.nn.utils.prune: `global_unstructured` with L1 magnitude over every Conv2d and
Linear weight at once (Han et al. 2015, "Learning both Weights and Connections", arXiv:1506.02626,
whose retraining step is our fine-tune), and `ln_structured` with the L1 norm of each conv's
output filters, the same share in every conv (Li et al. 2017, "Pruning Filters for Efficient
ConvNets", arXiv:1608.08710). The masks stay attached while fine-tuning, so pruned weights stay 0.

int8 is torch.ao.quantization (Jacob et al. 2018, arXiv:1712.05877): dynamic quantisation of the
Linear layers (`quantize_dynamic`: int8 weights, activations quantised on the fly), and static
quantisation of convs and Linears in FX graph mode (`prepare_fx` / `convert_fx`, the "x86"
backend's default qconfig: per-channel symmetric int8 weights, HistogramObserver activations,
calibrated on training images). Checked on torch 2.14.1 for x86 CPUs: FX graph mode works
(with a DeprecationWarning: torch.ao.quantization is moving to torchao); PT2E does not
(`torch.ao.quantization.quantize_pt2e` is gone from torch and torchao is not installed).

An int8 model has no gradients (quantised kernels have no autograd), so its explanations are
computed on its *dequantised twin*: the float model with every quantised weight replaced by its
int8 value times its scale (the numbers the int8 kernels multiply with), activations in float.
The twin's predictions are compared with the int8 model's so a reader sees how close it is.

Explanations are compared with the original's exactly as the sanity check compares maps
(`similarity.compare`: Spearman, SSIM and HOG, Adebayo et al. 2018).

The package: base (the kinds and names), prune (pruning and its fine-tune), quantise (int8 and
the dequantised twin), measure (predictions, latency, size, explanation maps), sweep (all of it
as Points). Callers use `compress.<name>`.
"""
from karp_models.compress.base import EXPLAIN_METHODS, KIND_NAMES, KINDS, PRUNABLE, Progress
from karp_models.compress.measure import (Size, compare_maps, cpu_clock, explain_maps, latency_ms, mean_similarity,
                                          model_size, paired_latency_ms, predictions)
from karp_models.compress.prune import (channel_sparsity, conv_norm_pairs, finetune, finetune_config, make_permanent,
                                        prunable, prune_model, weight_sparsity)
from karp_models.compress.quantise import KarpOutput, dequantised_twin, quantize_dynamic, quantize_static
from karp_models.compress.sweep import Point, Sweep, SweepConfig, sweep

__all__ = ["EXPLAIN_METHODS", "KIND_NAMES", "KINDS", "PRUNABLE", "KarpOutput", "Point", "Progress", "Size", "Sweep",
           "SweepConfig", "channel_sparsity", "compare_maps", "conv_norm_pairs", "cpu_clock", "dequantised_twin",
           "explain_maps", "finetune", "finetune_config", "latency_ms", "make_permanent", "mean_similarity",
           "model_size", "paired_latency_ms", "predictions", "prunable", "prune_model", "quantize_dynamic",
           "quantize_static", "sweep", "weight_sparsity"]
