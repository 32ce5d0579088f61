# On-device TensorFlow Lite Micro subset: model.py reads .tflite flatbuffers.
