"""Plain-text tables of a results dict (see :func:`~.run.run_benchmarks`).
"""
from .cases import SAMPLE_LENGTH


def print_tables(results: dict) -> None:
    """Print the train/memory, sample, quality, data and gpu sections
    present in ``results`` and its notes."""
    if 'train' in results:
        print('\ntraining step (same backbone and batch)')
        print(f'{"head":<8}{"samples/s":>11}{"vs AR":>8}{"peak MB":>10}')
        mem = results.get('memory', {})
        for name, row in results['train'].items():
            peak = mem.get(name, {}).get('peak_bytes')
            print(f'{name:<8}{row["samples_per_s"]:>11.1f}'
                  f'{row.get("ratio_vs_AR", 1.0):>8.3f}'
                  f'{(peak or 0) / 2**20:>10.1f}')
    for key, table in results.get('sample', {}).items():
        print(f'\nsampling at caption length {SAMPLE_LENGTH} ({key}, '
              f'vocabulary {table["vocab_size"]})')
        for label, row in table['cases'].items():
            print(f'{label:<26}{row["captions_per_s"]:>10.1f} captions/s'
                  f'{row.get("ratio_vs_AR", 1.0):>8.2f}x AR')
    if 'quality' in results:
        print('\nquality on the val split (trained checkpoints, length 16)')
        for key, row in results['quality']['cases'].items():
            print(f'{key:<26} CIDEr {row["CIDEr"]:6.1f}  BLEU-4 '
                  f'{row["BLEU_4"]:5.1f}  {row["captions_per_s"]:7.1f} '
                  'captions/s')
    if 'data' in results:
        d = results['data']
        print(f'\ndata wait: {100 * d["data_share"]:.1f}% of step time '
              f'({d["data_time_s"] * 1e3:.1f} ms of '
              f'{d["step_time_s"] * 1e3:.1f} ms)')
    if 'gpu' in results:
        print(f'\ngpu: {results["gpu"]}')
    for note in results.get('notes', []):
        print(f'note: {note}')
