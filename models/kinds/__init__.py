"""The model kinds, by the name a model table gives as `kind`. A kind is one class (models/kinds/base.py says
what it holds); adding one is that class and its entry here."""
from models.kinds.base import Kind
from models.kinds.frozen import Frozen
from models.kinds.full import Full
from models.kinds.module import Module
from models.kinds.partial import Partial
from models.kinds.tfidf import Tfidf
from models.kinds.tokens import Tokens

KINDS: dict[str, type[Kind]] = {
    "tfidf": Tfidf,        # word + char n-gram TF-IDF -> logistic regression
    "frozen": Frozen,      # a head on each text's cached sentence embedding
    "tokens": Tokens,      # a pooling or recurrent head on each text's cached token vectors
    "partial": Partial,    # a module's top layers fine-tuned on cached states of the layers below
    "full": Full,          # a whole module fine-tuned on token ids tokenized once
    "module": Module,      # a whole module fine-tuned inside the training step, strings in
}
