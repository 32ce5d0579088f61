"""wakeward_train: the offline wake-word trainer, one module per pipeline stage.

Data stages (this package today; numpy only, no TensorFlow):

- `voices`: which offline TTS engines and voices are installed; speech at 16 kHz mono int16.
- `phonemes` + `confusables`: negative texts generated from the wake phrase (phonetic
  neighbours from a word list, sub-words, the phrase's sounds inside longer words).
- `augment`: synthetic noise at an SNR, gain, synthetic room reverberation, time shift, speed.
- `clips`: owner recordings and labelled false wakes read from WAV files (validated).
- `dataset`: positive and negative sets with a held-out split by voice, written with
  `features` (pymicro-features, quantised exactly as the device quantises them).

Model stages (TensorFlow, the optional `train` extra; imported only when used):

- `model`: one Keras 3 model built as a non-streaming graph (training) and a streaming
  graph (microWakeWord v2 interface: int8 [1, 3, 40] in, uint8 [1, 1] out, state in
  resource variables) sharing every layer.
- `windows` + `train`: windows of the receptive field, class weights, early stopping.
- `export`: streaming, fully int8 TFLite, inspected and compared with the Keras model.
- `pipeline`: `wakeward train`, from the phrase to a checked model and its manifests.

Evaluation stage (TFLite Micro and numpy, no TensorFlow: `wakeward evaluate` runs it on any
microWakeWord v2 model):

- `scenes` + `streams`: hours of everyday held-out audio (held-out voices, texts training
  never said), as device features, cached in the dataset folder.
- `evaluate`: the model on TFLite Micro through the device's detection rule: FRR, false
  accepts per hour, the curve, the cutoff and window for a target FA/h.
- `detplot`: the DET curve (PNG). `evalcmd`: `wakeward evaluate --model MODEL --data DIR`.
"""

__version__ = "0.1.0"
