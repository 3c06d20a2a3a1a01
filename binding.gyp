{
  "variables": {
    "core_flags": ["-O3", "-std=c++17", "-fPIC", "-fno-math-errno", "-Wall", "-Wno-unused-function"],
    "avx512_flags": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512bf16", "-mavx512vnni", "-mavx512vbmi",
                     "-mavx2", "-mfma", "-mf16c", "-Wno-maybe-uninitialized", "-Wno-array-bounds"],
    "avx2_flags": ["-mavx2", "-mfma", "-mf16c", "-ffp-contract=off"],
    "neon_flags": ["-ffp-contract=off"],
    "neon_dotprod_flags": ["-march=armv8.2-a+dotprod", "-ffp-contract=off"],
    "neon_bf16_flags": ["-march=armv8.2-a+bf16", "-ffp-contract=off"],
    "neon_i8mm_flags": ["-march=armv8.2-a+dotprod+i8mm", "-ffp-contract=off"]
  },
  "target_defaults": {
    "include_dirs": ["native/core"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++14", "-std=gnu++17"],
    "cflags_cc": ["<@(core_flags)"],
    "defines": ["NAPI_VERSION=8"],
    "conditions": [
      ["OS=='mac'", {
        "xcode_settings": {
          "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
          "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
          "MACOSX_DEPLOYMENT_TARGET": "11.0",
          "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno", "-Wall", "-Wno-unused-function"]
        }
      }],
      # MSVC (not built or tested here): C++17, /EHsc, <windows.h> without min/max macros, and the
      # kernels' "#pragma GCC unroll" lines ignored without a warning (C4068).
      ["OS=='win'", {
        "defines": ["NOMINMAX", "WIN32_LEAN_AND_MEAN"],
        "msvs_settings": {"VCCLCompilerTool": {"ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17", "/EHsc", "/wd4068"]}}
      }]
    ]
  },
  "targets": [
    {
      "target_name": "moecap",
      "sources": [
        "native/core/layer_config.cc",
        "native/core/weights/dtype.cc",
        "native/core/weights/weight_source.cc",
        "native/core/weights/packed_matrix.cc",
        "native/core/weights/block_quant.cc",
        "native/core/weights/conversion_error.cc",
        "native/core/weights/activation_rows.cc",
        "native/core/kernels/generic/linear_generic.cc",
        "native/core/kernels/generic/peak_generic.cc",
        "native/core/calibrate/calibrate.cc",
        "native/core/calibrate/file_read_bandwidth.cc",
        "native/core/kernels/cpu_features.cc",
        "native/core/kernels/isa_select.cc",
        "native/core/runtime/thread_pool.cc",
        "native/core/runtime/memory_info.cc",
        "native/core/runtime/environment.cc",
        "native/core/runtime/file_io.cc",
        "native/core/router/router_topk.cc",
        "native/core/dispatch/routing_plan.cc",
        "native/core/experts/expert_weights.cc",
        "native/core/experts/expert_arena.cc",
        "native/core/experts/expert_ffn.cc",
        "native/core/layer/moe_layer.cc",
        "native/core/layer/moe_layer_reference.cc",
        "native/core/checkpoint/tensor_reader.cc",
        "native/core/checkpoint/quant_formats.cc",
        "native/core/checkpoint/block_scales.cc",
        "native/core/checkpoint/checkpoint_weights.cc",
        "native/core/checkpoint/expert_staging.cc",
        "native/core/offload/xxhash64.cc",
        "native/core/offload/expert_file.cc",
        "native/core/offload/progress_bar.cc",
        "native/core/offload/prefetcher.cc",
        "native/core/offload/slot_table.cc",
        "native/core/offload/expert_cache.cc",
        "native/core/offload/belady_replay.cc",
        "native/core/offload/cache_replay.cc",
        "native/core/offload/stack_replay.cc",
        "native/core/offload/stream_replay.cc",
        "native/core/trace/canonical_trace_line.cc",
        "native/core/trace/trace_spill_writer.cc",
        "native/core/trace/jsonl_trace_reader.cc",
        "native/core/trace/trace_ids.cc",
        "native/core/model/moe_model.cc",
        "native/core/counters/perf_events.cc",
        "native/core/counters/powercap_energy.cc",
        "native/core/counters/nvml_counters.cc",
        "native/core/counters/counter_session.cc",
        "native/core/backend/library_files.cc",
        "native/core/backend/cuda_loader.cc",
        "native/core/backend/cuda_layer.cc",
        "native/core/backend/gpu_weight_pack.cc",
        "native/core/ep/expert_placement.cc",
        "native/core/ep/ep_forward.cc",
        "native/core/ep/ep_forward_cuda.cc",
        "native/core/ep/loopback_transport.cc",
        "native/core/ep/ep_simulation.cc",
        "native/core/ep/ep_layer.cc",
        "native/core/ep/cuda_nccl_transport.cc",
        "native/core/backend/mpi_loader.cc",
        "native/binding/addon.cc",
        "native/binding/js_error.cc",
        "native/binding/calibrate_wrap.cc",
        "native/binding/layer_options.cc",
        "native/binding/moe_layer_wrap.cc",
        "native/binding/offload_stats.cc",
        "native/binding/moe_model_wrap.cc",
        "native/binding/counters_wrap.cc",
        "native/binding/backend_info.cc",
        "native/binding/cache_replay_wrap.cc",
        "native/binding/trace_ids_wrap.cc",
        "native/binding/trace_spill_wrap.cc",
        "native/binding/checkpoint_wrap.cc",
        "native/binding/ep_wrap.cc",
        "native/binding/ep_wire_wrap.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # SWALLOW_UNTHROWABLE_EXCEPTIONS: in a worker_thread being terminated, an error raised by a call
      # cannot be thrown into JS; node-addon-api then drops it instead of aborting the process.
      "defines": ["NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "conditions": [
        ["target_arch=='x64' or target_arch=='ia32'", {"dependencies": ["moecap_isa_avx512", "moecap_isa_avx2"]}],
        ["target_arch=='arm64'", {
          "dependencies": ["moecap_isa_neon", "moecap_isa_neon_dotprod", "moecap_isa_neon_i8mm", "moecap_isa_neon_bf16"],
          "cflags_cc": ["-ffp-contract=off"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=off"]}
        }],
        ["OS!='win'", {"libraries": ["-pthread", "-ldl"]}],
        ["OS=='win'", {"libraries": ["psapi.lib"]}]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64' or target_arch=='ia32'", {
      "targets": [
        {
          "target_name": "moecap_isa_avx512",
          "type": "static_library",
          "sources": ["native/core/kernels/avx512/linear_avx512_f32.cc", "native/core/kernels/avx512/linear_avx512_bf16.cc",
                      "native/core/kernels/avx512/linear_avx512_int8.cc", "native/core/kernels/avx512/linear_avx512_int4.cc",
                      "native/core/kernels/avx512/linear_avx512_mxfp4.cc", "native/core/kernels/avx512/linear_avx512_fp8.cc",
                      "native/core/kernels/avx512/kernels_avx512.cc", "native/core/kernels/avx512/peak_avx512.cc",
                      "native/core/kernels/avx512/quant_row_avx512.cc"],
          "cflags_cc": ["<@(avx512_flags)"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["<@(avx512_flags)"]},
          "msvs_settings": {"VCCLCompilerTool": {"AdditionalOptions": ["/arch:AVX512"]}}
        },
        {
          "target_name": "moecap_isa_avx2",
          "type": "static_library",
          "sources": ["native/core/kernels/avx2/linear_avx2.cc", "native/core/kernels/avx2/linear_avx2_bf16.cc",
                      "native/core/kernels/avx2/linear_avx2_quant.cc", "native/core/kernels/avx2/linear_avx2_fp8.cc",
                      "native/core/kernels/avx2/peak_avx2.cc"],
          "cflags_cc": ["<@(avx2_flags)"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["<@(avx2_flags)"]},
          "msvs_settings": {"VCCLCompilerTool": {"AdditionalOptions": ["/arch:AVX2", "/fp:precise"]}}
        }
      ]
    }],
    ["target_arch=='arm64'", {
      "targets": [
        {
          "target_name": "moecap_isa_neon",
          "type": "static_library",
          "sources": ["native/core/kernels/neon/linear_neon.cc", "native/core/kernels/neon/linear_neon_bf16.cc",
                      "native/core/kernels/neon/linear_neon_quant.cc", "native/core/kernels/neon/linear_neon_fp8.cc",
                      "native/core/kernels/neon/peak_neon.cc"],
          "cflags_cc": ["<@(neon_flags)"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["<@(neon_flags)"]}
        },
        {
          "target_name": "moecap_isa_neon_dotprod",
          "type": "static_library",
          "sources": ["native/core/kernels/neon/linear_neon_dotprod.cc", "native/core/kernels/neon/peak_neon_dotprod.cc"],
          "cflags_cc": ["<@(neon_dotprod_flags)"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["<@(neon_dotprod_flags)"]}
        },
        {
          "target_name": "moecap_isa_neon_i8mm",
          "type": "static_library",
          "sources": ["native/core/kernels/neon/linear_neon_i8mm.cc"],
          "cflags_cc": ["<@(neon_i8mm_flags)"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["<@(neon_i8mm_flags)"]}
        },
        {
          "target_name": "moecap_isa_neon_bf16",
          "type": "static_library",
          "sources": ["native/core/kernels/neon/linear_neon_bf16dot.cc", "native/core/kernels/neon/peak_neon_bf16.cc"],
          "cflags_cc": ["<@(neon_bf16_flags)"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["<@(neon_bf16_flags)"]}
        }
      ]
    }]
  ]
}
