"""Fallback chat template for models that ship none (ChatML, the most common format).

Here, below both the engine (whose backends render with it) and the chat layer, so that
webui/engine imports nothing from webui/chat.
"""

FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
FALLBACK_STOP = ("<|im_end|>", "<|im_start|>")
