"""wakeward_train: the offline wake-word trainer, one module per pipeline stage.

Data stages (this package today; numpy only, no TensorFlow):

- `voices`: which offline TTS engines and voices are installed; speech at 16 kHz mono int16.
- `phonemes` + `confusables`: negative texts generated from the wake phrase (phonetic
  neighbours from a word list, sub-words, the phrase's sounds inside longer words).
- `augment`: synthetic noise at an SNR, gain, synthetic room reverberation, time shift, speed.
- `clips`: owner recordings and labelled false wakes read from WAV files (validated).
- `dataset`: positive and negative sets with a held-out split by voice, written with
  `features` (pymicro-features, quantised exactly as the device quantises them).

The model, its streaming export and evaluation come next (issue 7).
"""

__version__ = "0.1.0"
