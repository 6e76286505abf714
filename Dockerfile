# Hugging Face Docker Space image for the web UI (also runs anywhere with
# `docker run -p 7860:7860` / `podman run -p 7860:7860`).
#
# Build arguments
#   BASE_IMAGE       Python 3.11 base. Default python:3.11-slim. Any Debian-based
#                    image with python3 + venv works (scripts/podman_check.sh passes
#                    a debootstrapped bookworm rootfs, where pip is "externally
#                    managed" under PEP 668 -- hence the venv below, used on both).
#   TORCH_PIP_ARGS   Where the pinned torch comes from. Default: PyTorch's CPU index,
#                    so a Space gets the ~200 MB CPU build and not the multi-GB CUDA
#                    build PyPI serves for `torch==X`. Offline/air-gapped builds pass
#                    e.g. "--no-index --find-links /wheels" plus `-v DIR:/wheels:ro`.
#   PIP_EXTRA_ARGS   Extra options for `pip install -r requirements.txt`.
#   LLAMA_CMAKE_ARGS CMake options for the llama-cpp-python source build. The default
#                    avoids -march=native so an image built on one CPU runs on another
#                    (AVX2/FMA/F16C: any x86-64 CPU of the last ~10 years).
#
# Data
#   WEBUI_DATA_DIR defaults to /home/user/app/data (inside the container, lost on
#   restart). On a Space with persistent storage / a storage bucket mounted at /data,
#   set the Space variables WEBUI_DATA_DIR=/data (and HF_HOME=/data/.huggingface to
#   keep downloaded models too).
#
# The app binds 0.0.0.0 when SPACE_ID is set (Spaces set it); CMD also passes
# --listen so a plain `run -p 7860:7860` works outside Spaces.

ARG BASE_IMAGE=python:3.11-slim

# ---------------------------------------------------------------- builder stage
FROM ${BASE_IMAGE} AS builder

ARG TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
ARG PIP_EXTRA_ARGS=""
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Compilers for llama-cpp-python (built from source); they stay in this stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake ca-certificates \
    && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/home/user/venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DEFAULT_TIMEOUT=180
ENV PATH=${VIRTUAL_ENV}/bin:${PATH}
RUN python3 -m venv "${VIRTUAL_ENV}"

# requirements.txt applies requirements.lock (exact versions) as constraints: copy both.
COPY requirements.txt requirements.lock /tmp/

# torch first, from TORCH_PIP_ARGS (its dependencies come with the rest below;
# `torch==X` in requirements.txt is then already satisfied by X+cpu).
# The pip cache mount keeps the compiled llama-cpp-python wheel across rebuilds.
# torch_req comes from requirements.txt (pinned there); the *_ARGS are meant to word-split.
# hadolint ignore=SC2086,DL3013
RUN --mount=type=cache,target=/root/.cache/pip \
    torch_req="$(grep -E '^torch[[:space:]]*[=<>~!]' /tmp/requirements.txt | head -n1)" \
    && echo "torch requirement: ${torch_req:-<none>}; TORCH_PIP_ARGS: ${TORCH_PIP_ARGS}" \
    && if [ -n "${torch_req}" ]; then pip install --no-deps ${TORCH_PIP_ARGS} "${torch_req}"; fi \
    && CMAKE_ARGS="${LLAMA_CMAKE_ARGS}" pip install ${PIP_EXTRA_ARGS} -r /tmp/requirements.txt \
    && pip check \
    && python -c "import torch, llama_cpp, gradio; print('torch', torch.__version__, '| llama_cpp', llama_cpp.__version__, '| gradio', gradio.__version__)"

# ------------------------------------------------------------------ final stage
FROM ${BASE_IMAGE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# libgomp1: OpenMP runtime the llama.cpp build links against.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --shell /bin/bash user \
    && install -d -o 1000 -g 1000 /home/user/app /home/user/app/data

COPY --from=builder --chown=1000:1000 /home/user/venv /home/user/venv

# uid 1000 = "user", as Hugging Face Spaces require.
USER 1000
ENV HOME=/home/user \
    VIRTUAL_ENV=/home/user/venv \
    PATH=/home/user/venv/bin:/home/user/.local/bin:${PATH} \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_DISABLE_TELEMETRY=1 \
    WEBUI_DATA_DIR=/home/user/app/data

WORKDIR /home/user/app
COPY --chown=1000:1000 . /home/user/app

EXPOSE 7860
CMD ["python", "app.py", "--listen"]
