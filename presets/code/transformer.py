"""The two layers of keras.io's "Text classification with Transformer", as a tfbench preset's own code.

`TokenAndPositionEmbedding` gives each token id an embedding plus one for its position;
`TransformerBlock` is one encoder block: self-attention and a feed-forward network, each with a
residual connection and layer normalisation. The preset `transformer-text.toml` stacks them; tfbench
imports this file only when allowed (`--allow-code`), and builds the forms of both layers from the
signatures and docstrings below.

Both layers register themselves with Keras under the package "transformer", so a saved `.keras`
model loads in plain Keras once this module is imported:

    import keras, transformer
    model = keras.saving.load_model("model.keras")
"""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="transformer")
class TokenAndPositionEmbedding(layers.Layer):
    """Token embeddings plus learned position embeddings, for sequences of token ids.

    Args:
        maxlen: The longest sequence: how many positions get an embedding.
        vocab_size: Size of the vocabulary (token ids are below it).
        embed_dim: Size of each token's and position's embedding.
    """

    def __init__(self, maxlen=200, vocab_size=20000, embed_dim=32, **kwargs):
        super().__init__(**kwargs)
        self.maxlen = maxlen
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def build(self, input_shape):
        self.token_emb.build(input_shape)
        self.pos_emb.build((self.maxlen,))

    def call(self, x):
        length = ops.shape(x)[-1]
        positions = self.pos_emb(ops.arange(start=0, stop=length, step=1))
        return self.token_emb(x) + positions

    def get_config(self):
        return {
            **super().get_config(),
            "maxlen": self.maxlen,
            "vocab_size": self.vocab_size,
            "embed_dim": self.embed_dim,
        }


@keras.saving.register_keras_serializable(package="transformer")
class TransformerBlock(layers.Layer):
    """One Transformer encoder block: multi-head self-attention, then a feed-forward network.

    Args:
        embed_dim: Size of the embeddings it reads and writes.
        num_heads: Number of attention heads.
        ff_dim: Hidden units of the feed-forward network.
        rate: Dropout rate after the attention and after the feed-forward network.
    """

    def __init__(self, embed_dim=32, num_heads=2, ff_dim=32, rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.rate = rate
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential([layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = layers.Dropout(rate)
        self.dropout2 = layers.Dropout(rate)

    def build(self, input_shape):
        self.att.build(input_shape, input_shape)
        self.ffn.build(input_shape)
        self.layernorm1.build(input_shape)
        self.layernorm2.build(input_shape)

    def call(self, inputs, training=None):
        attn_output = self.att(inputs, inputs)
        attn_output = self.dropout1(attn_output, training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.ffn(out1)
        ffn_output = self.dropout2(ffn_output, training=training)
        return self.layernorm2(out1 + ffn_output)

    def get_config(self):
        return {
            **super().get_config(),
            "embed_dim": self.embed_dim,
            "num_heads": self.num_heads,
            "ff_dim": self.ff_dim,
            "rate": self.rate,
        }
