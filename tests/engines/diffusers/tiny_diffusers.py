"""Tiny random-weight pipelines, built in code and saved with ``save_pretrained``.

The engine then loads them through the real ``DiffusionPipeline.from_pretrained(local_dir)``
path, exactly as it loads real checkpoints. Shapes follow diffusers' own fast tests, shrunk so a
3 s shot renders in about a second on two CPU cores, with the real models' compression factors
where they are cheap (LTX-2: 8k+1 frames; Wan: 4k+1) so the frame arithmetic is exercised.

    ltx2        LTX2Pipeline, Gemma 3 text encoder, native audio (16 kHz stereo)
    wan-ti2v    WanPipeline with expand_timesteps (the Wan 2.2 TI2V-5B layout): text + image
    wan-flf     WanImageToVideoPipeline without image encoder (Wan 2.2 I2V layout): first+last
    wan-vace    WanVACEPipeline: reference images (elements), first/last frames by mask
    audio       StableAudioPipeline: the audio source for Wan, which makes no sound
"""

from __future__ import annotations

import string
from pathlib import Path

import torch

NAMES = ("ltx2", "wan-ti2v", "wan-flf", "wan-vace", "audio")
_built: dict[str, Path] = {}


def build_all(root: Path) -> dict[str, Path]:
    """Build (once per process) and save every tiny pipeline under ``root``; name → folder.

    Torch runs single-threaded here: on a shared two-core machine OpenMP threads spinning
    against other processes make tiny convolutions ~20x slower, not faster.
    """
    if _built:
        return dict(_built)
    torch.set_num_threads(1)
    builders = {
        "ltx2": build_ltx2,
        "wan-ti2v": build_wan_ti2v,
        "wan-flf": build_wan_flf,
        "wan-vace": build_wan_vace,
        "audio": build_stable_audio,
    }
    for name in NAMES:
        folder = root / name
        builders[name]().save_pretrained(folder)
        _built[name] = folder
    return dict(_built)


def gemma_tokenizer():  # type: ignore[no-untyped-def]
    from transformers import GemmaTokenizer

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    for ch in string.printable + "▁":
        vocab.setdefault(ch, len(vocab))
    return GemmaTokenizer(vocab=vocab, merges=[])


def t5_tokenizer(max_length: int = 512):  # type: ignore[no-untyped-def]
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0)]
    pieces += [(c, -2.0) for c in string.ascii_letters + string.digits + ".,;:!?@_-'()"]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=max_length)


def build_ltx2():  # type: ignore[no-untyped-def]
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2Pipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    tokenizer = gemma_tokenizer()
    torch.manual_seed(0)
    text_encoder = Gemma3ForConditionalGeneration(
        Gemma3Config(
            text_config={
                "vocab_size": len(tokenizer),
                "hidden_size": 32,
                "intermediate_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "head_dim": 16,
                "max_position_embeddings": 1024,
                "query_pre_attn_scalar": 16,
                "sliding_window": 64,
            },
            vision_config={
                "hidden_size": 16,
                "intermediate_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "image_size": 28,
                "patch_size": 14,
            },
            mm_tokens_per_image=4,
            boi_token_index=4,
            eoi_token_index=4,
            image_token_index=4,
        )
    )
    hidden = text_encoder.config.text_config.hidden_size
    torch.manual_seed(0)
    transformer = LTX2VideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        qk_norm="rms_norm_across_heads",
        caption_channels=hidden,
        rope_double_precision=False,
        rope_type="split",
    )
    torch.manual_seed(0)
    connectors = LTX2TextConnectors(
        caption_channels=hidden,
        text_proj_in_factor=text_encoder.config.text_config.num_hidden_layers + 1,
        video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_theta=10000.0,
        rope_double_precision=False,
        causal_temporal_positioning=False,
        rope_type="split",
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTX2Video(  # 16x spatial, 8x temporal: frame counts are 8k+1 as for the real one
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 8, 8),
        decoder_block_out_channels=(8, 8, 8),
        down_block_types=("LTX2VideoDownBlock3D",) * 3,
        layers_per_block=(1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True,) * 3,
        decoder_spatio_temporal_scaling=(True,) * 3,
        decoder_inject_noise=(False,) * 4,
        downsample_type=("spatiotemporal",) * 3,
        upsample_type=("spatiotemporal",) * 3,
        upsample_residual=(False,) * 3,
        upsample_factor=(1,) * 3,
        timestep_conditioning=False,
        patch_size=2,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    torch.manual_seed(0)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=2,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=8,
    )
    torch.manual_seed(0)
    vocoder = LTX2Vocoder(  # upsamples by the mel hop (4·4·10 = 160), so 16 kHz is its true rate
        in_channels=audio_vae.config.output_channels * audio_vae.config.mel_bins,
        hidden_channels=32,
        out_channels=2,
        upsample_kernel_sizes=[8, 8, 20],
        upsample_factors=[4, 4, 10],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=16000,
    )
    return LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        audio_vae=audio_vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        connectors=connectors,
        transformer=transformer,
        vocoder=vocoder,
    )


def _umt5():  # type: ignore[no-untyped-def]
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = t5_tokenizer()
    torch.manual_seed(0)
    encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
        )
    )
    return tokenizer, encoder


def _wan_transformer(cls, **kwargs):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    defaults = {
        "patch_size": (1, 2, 2),
        "num_attention_heads": 2,
        "attention_head_dim": 12,
        "text_dim": 32,
        "freq_dim": 256,
        "ffn_dim": 32,
        "num_layers": 2,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "rope_max_seq_len": 32,
    }
    return cls(**{**defaults, **kwargs})


def _wan21_vae():  # type: ignore[no-untyped-def]
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    return AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )


def build_wan_ti2v():  # type: ignore[no-untyped-def]
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel

    tokenizer, text_encoder = _umt5()
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=48,
        in_channels=12,
        out_channels=12,
        is_residual=True,
        patch_size=2,
        latents_mean=[0.0] * 48,
        latents_std=[1.0] * 48,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        temperal_downsample=[False, True, True],
    )
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    transformer = _wan_transformer(WanTransformer3DModel, in_channels=48, out_channels=48)
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        transformer=transformer,
        transformer_2=None,
        expand_timesteps=True,
    )


def build_wan_flf():  # type: ignore[no-untyped-def]
    from diffusers import UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel

    tokenizer, text_encoder = _umt5()
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    transformer = _wan_transformer(WanTransformer3DModel, in_channels=36, out_channels=16)
    return WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=_wan21_vae(),
        scheduler=scheduler,
        transformer=transformer,
        transformer_2=None,
        image_encoder=None,
        image_processor=None,
    )


def build_wan_vace():  # type: ignore[no-untyped-def]
    from diffusers import FlowMatchEulerDiscreteScheduler, WanVACEPipeline, WanVACETransformer3DModel

    tokenizer, text_encoder = _umt5()
    transformer = _wan_transformer(
        WanVACETransformer3DModel, in_channels=16, out_channels=16, vace_layers=[0, 1], vace_in_channels=96
    )
    return WanVACEPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=_wan21_vae(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer=transformer,
    )


def build_stable_audio():  # type: ignore[no-untyped-def]
    from diffusers import (
        AutoencoderOobleck,
        EDMDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )
    from transformers import T5Config, T5EncoderModel

    tokenizer = t5_tokenizer(max_length=32)
    torch.manual_seed(0)
    text_encoder = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
        )
    )
    torch.manual_seed(0)
    # 200 Hz, hop 8 → 25 latents a second; 400 latents → up to 16 s, the longest shot is 15 s.
    transformer = StableAudioDiTModel(
        sample_size=400,
        in_channels=3,
        num_layers=2,
        attention_head_dim=4,
        num_attention_heads=2,
        num_key_value_attention_heads=2,
        out_channels=3,
        cross_attention_dim=4,
        time_proj_dim=8,
        global_states_input_dim=8,
        cross_attention_input_dim=4,
    )
    torch.manual_seed(0)
    vae = AutoencoderOobleck(
        encoder_hidden_size=6,
        downsampling_ratios=[2, 4],
        decoder_channels=3,
        decoder_input_channels=3,
        audio_channels=2,
        channel_multiples=[2, 4],
        sampling_rate=200,
    )
    torch.manual_seed(0)
    projection = StableAudioProjectionModel(text_encoder_dim=32, conditioning_dim=4, min_value=0, max_value=32)
    # Stable Audio Open ships CosineDPMSolverMultistepScheduler, which needs torchsde; this one does not.
    scheduler = EDMDPMSolverMultistepScheduler(
        solver_order=2, prediction_type="v_prediction", sigma_data=1.0, sigma_schedule="exponential"
    )
    return StableAudioPipeline(
        transformer=transformer,
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        projection_model=projection,
    )


def models_toml(models: dict[str, Path], **overrides: str) -> str:
    """A models.toml over the tiny pipelines: 64x32 frames, 2 steps, short passes.

    ``overrides`` replace whole lines by key (e.g. ``std_elements='elements = …'``).
    """
    lines = {
        "std_head": "[std]",
        "std_defaults": 'steps = 2\nresolution = "64x32"\nframes_per_pass = 41\nguidance = [1.0, 5.0]\n'
        "call_args = { max_sequence_length = 32 }",
        "std_text_to_video": f'text_to_video = "{models["ltx2"]}"',
        "std_image_to_video": f'image_to_video = {{ path = "{models["wan-ti2v"]}", '
        f'audio = {{ path = "{models["audio"]}", steps = 2 }} }}',
        "std_first_last_frame": f'first_last_frame = {{ path = "{models["wan-flf"]}", '
        f'audio = {{ path = "{models["audio"]}", steps = 2 }} }}',
        "std_elements": f'elements = {{ path = "{models["wan-vace"]}", frames_per_pass = 81 }}',
        "pro_head": "\n[pro]",
        "pro_text_to_video": f'text_to_video = {{ path = "{models["ltx2"]}", steps = 2, resolution = "96x64", '
        f"call_args = {{ max_sequence_length = 32 }} }}",
    }
    lines.update(overrides)
    return "\n".join(line for line in lines.values() if line) + "\n"
