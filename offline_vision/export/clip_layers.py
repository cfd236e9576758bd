"""PyTorch modules the CLIP export traces (imports torch: export and benchmarks only).

`text_tower` and `vision_tower` split a CLIPModel into its two towers, sharing its weights.
`class_token_vision` is an image tower that skips work its output never reads: CLIP's image embedding is read from the class token alone after the last encoder layer. That
layer still needs keys and values for every token, but its query, attention output, residual,
LayerNorm and MLP are needed for the class token only, so the exported graph computes them for
one row instead of 50 (ViT-B/32): 6.6 % fewer FLOPs, exactly the same function. The export
validates the result against the unmodified PyTorch tower.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

GRAPH_NOTE = "last encoder layer computed for the class token only (keys/values for all tokens)"


def text_tower(model: nn.Module) -> nn.Module:
    """CLIPTextModelWithProjection sharing `model`'s text weights (nothing is reloaded)."""
    from transformers import CLIPTextModelWithProjection

    tc = copy.deepcopy(model.config.text_config)
    tc.projection_dim = model.config.projection_dim
    text = CLIPTextModelWithProjection(tc).eval()
    text.text_model, text.text_projection = model.text_model, model.text_projection
    return text


def vision_tower(model: nn.Module) -> nn.Module:
    """CLIPVisionModelWithProjection sharing `model`'s image weights (nothing is reloaded)."""
    from transformers import CLIPVisionModelWithProjection

    vc = copy.deepcopy(model.config.vision_config)
    vc.projection_dim = model.config.projection_dim
    vision = CLIPVisionModelWithProjection(vc).eval()
    vision.vision_model, vision.visual_projection = model.vision_model, model.visual_projection
    return vision


class ClassTokenLayer(nn.Module):
    """A CLIPEncoderLayer's forward for the class token alone; returns [batch, 1, width]."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, hidden_states, attention_mask=None, causal_attention_mask=None, **_):
        layer, attn = self.layer, self.layer.self_attn
        b, n, width = hidden_states.shape
        heads, dim = attn.num_heads, attn.head_dim
        h = layer.layer_norm1(hidden_states)
        q = attn.q_proj(h[:, :1]).view(b, 1, heads, dim).transpose(1, 2)
        k = attn.k_proj(h).view(b, n, heads, dim).transpose(1, 2)
        v = attn.v_proj(h).view(b, n, heads, dim).transpose(1, 2)
        weights = torch.softmax((q * attn.scale) @ k.transpose(-1, -2), dim=-1)
        out = attn.out_proj((weights @ v).transpose(1, 2).reshape(b, 1, width))
        x = hidden_states[:, :1] + out
        return (x + layer.mlp(layer.layer_norm2(x)),)


def class_token_vision(vision: nn.Module) -> nn.Module:
    """A copy of a CLIPVisionModelWithProjection for export whose last layer is a ClassTokenLayer.

    Weights are shared with `vision`, which is left unchanged (it stays the reference)."""
    out = copy.copy(vision)  # shallow: shares every parameter; module dicts are copied below
    out._modules = dict(vision._modules)
    vm = out.vision_model = copy.copy(vision.vision_model)
    vm._modules = dict(vision.vision_model._modules)
    enc = vm.encoder = copy.copy(vision.vision_model.encoder)
    enc._modules = dict(vision.vision_model.encoder._modules)
    layers = list(enc.layers)
    enc.layers = nn.ModuleList([*layers[:-1], ClassTokenLayer(layers[-1])])
    return out
