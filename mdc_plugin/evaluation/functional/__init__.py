"""Caption scores as plain functions (no MMEngine), COCO-toolkit exact."""
from .coco_scores import REFERENCE_SCORES, coco_caption_scores, tokenize_pairs
from .diversity import (corpus_diversity, distinct_n, div_n, mean_length,
                        sample_diversity, self_bleu, vocabulary_size)
from .meteor import MeteorScorer, shared_meteor_scorer
from .ptb_tokenizer import (PUNCTUATIONS, fast_tokenize, java_tokenize,
                            ptb_tokenize)
from .rouge import rouge_l
from .spice import compute_spice, spice_unavailable_reason

__all__ = [
    'REFERENCE_SCORES', 'coco_caption_scores', 'tokenize_pairs',
    'ptb_tokenize', 'fast_tokenize', 'java_tokenize', 'PUNCTUATIONS',
    'rouge_l', 'MeteorScorer', 'shared_meteor_scorer',
    'compute_spice', 'spice_unavailable_reason', 'corpus_diversity',
    'sample_diversity', 'distinct_n', 'div_n', 'self_bleu', 'mean_length',
    'vocabulary_size'
]
