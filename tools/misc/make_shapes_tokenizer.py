"""Regenerate ``mdc_plugin/assets/shapes_tokenizer`` (the word-level tokenizer
of the synthetic shapes data set) from the data set's grammar words.

Usage::

    python tools/misc/make_shapes_tokenizer.py [--out DIR]
"""
import argparse

from mdc_plugin.datasets.shapes import vocabulary
from mdc_plugin.models.tokenizers import (SHAPES_TOKENIZER_DIR,
                                          ShapesTokenizer,
                                          save_word_level_tokenizer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=SHAPES_TOKENIZER_DIR,
                        help='output directory (default: the package asset)')
    args = parser.parse_args()
    words = vocabulary()
    save_word_level_tokenizer(words, args.out)
    tok = ShapesTokenizer(args.out)
    print(f'wrote {args.out}: {len(words)} words, {tok!r}')


if __name__ == '__main__':
    main()
