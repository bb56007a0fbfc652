"""Tiny random models built locally with transformers, for tests that need real model files.

No Hugging Face hub access: the tokenizers are built from a small fixed word list with the
``tokenizers`` library, the weights are random, and everything is saved as safetensors.
The models answer nonsense, quickly; tests assert on shapes and protocol, never on text.

    chat_dir = make_tiny_chat_model(tmp_path / "chat")          # LlamaForCausalLM + chat template
    clf_dir = make_tiny_classifier(tmp_path / "clf")            # POSITIVE / NEGATIVE labels
    emb_dir = make_tiny_embedding_model(tmp_path / "emb")       # BertModel, hidden size 32
"""

from __future__ import annotations

from pathlib import Path

WORDS = (
    "hello world the a an is are was good bad great terrible happy sad movie film "
    "i you we they it this that love hate like not very so and or but story tell me "
    "about cat dog sun moon day night yes no ok fine thanks please what why how"
).split()

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|> {{ message['content'] }} <|end|> "
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)

EMBEDDING_HIDDEN_SIZE = 32
CLASSIFIER_LABELS = ("NEGATIVE", "POSITIVE")


def _word_level_tokenizer(specials: list[str], bert_style: bool):  # -> PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate([*specials, *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if bert_style:
        backend.post_processor = processors.TemplateProcessing(
            single="<cls> $A <sep>",
            special_tokens=[("<cls>", vocab["<cls>"]), ("<sep>", vocab["<sep>"])],
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<pad>",
        **({"cls_token": "<cls>", "sep_token": "<sep>"} if bert_style else {}),
        **({} if bert_style else {"bos_token": "<s>", "eos_token": "<|end|>"}),
    )


def make_tiny_chat_model(target: Path, *, seed: int = 0) -> Path:
    """A 2-layer Llama with a word-level tokenizer and a chat template, saved to ``target``."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    specials = ["<pad>", "<unk>", "<s>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]
    tokenizer = _word_level_tokenizer(specials, bert_style=False)
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    return _save(model, tokenizer, target)


def make_tiny_classifier(target: Path, *, seed: int = 0) -> Path:
    """A 2-layer BERT sequence classifier with labels NEGATIVE / POSITIVE."""
    import torch
    from transformers import BertForSequenceClassification

    tokenizer = _word_level_tokenizer(["<pad>", "<unk>", "<cls>", "<sep>"], bert_style=True)
    torch.manual_seed(seed)
    config = _tiny_bert_config(len(tokenizer), tokenizer.pad_token_id)
    config.id2label = dict(enumerate(CLASSIFIER_LABELS))
    config.label2id = {label: index for index, label in enumerate(CLASSIFIER_LABELS)}
    model = BertForSequenceClassification(config).eval()
    return _save(model, tokenizer, target)


def make_tiny_embedding_model(target: Path, *, seed: int = 0) -> Path:
    """A 2-layer BERT encoder (feature extraction), hidden size ``EMBEDDING_HIDDEN_SIZE``."""
    import torch
    from transformers import BertModel

    tokenizer = _word_level_tokenizer(["<pad>", "<unk>", "<cls>", "<sep>"], bert_style=True)
    torch.manual_seed(seed)
    model = BertModel(_tiny_bert_config(len(tokenizer), tokenizer.pad_token_id)).eval()
    return _save(model, tokenizer, target)


def _tiny_bert_config(vocab_size: int, pad_token_id: int):  # -> BertConfig
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=EMBEDDING_HIDDEN_SIZE,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=128,
        pad_token_id=pad_token_id,
    )


def _save(model, tokenizer, target: Path) -> Path:  # type: ignore[no-untyped-def]
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    return target
