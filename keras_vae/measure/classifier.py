"""Do samples show the class that was asked for? A plain CNN classifier as the judge.

A conditional VAE's decoder is asked for a class; whether its pictures show that class is
measured the way conditional generative models usually are: a classifier trained on the
same dataset's training split labels the decoded samples (the means of p(x|z, y), as the
pictures show them). Per class, the fraction labelled as the class asked for is the class
accuracy of the samples; the classifier's own test accuracy says how far to trust it.
An unconditional model gets the class histogram of its prior samples instead: a check
for classes it never draws.

The classifier is trained once per run and kept in the run directory
(`classifier.keras` with `classifier.json`), so evaluating again reuses it.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
from keras import layers

from keras_vae.data.pipeline import epoch_variable, make_dataset
from keras_vae.model.latents import every_class
from keras_vae.run.atomic import atomic_path, write_json
from keras_vae.run.callbacks import TrainingEpoch

CLASSIFIER = "classifier.keras"
CLASSIFIER_JSON = "classifier.json"
EPOCHS = 5
BATCH_SIZE = 128
SAMPLES_PER_CLASS = 1000


def build_classifier(image_shape, classes: int) -> keras.Model:
    """Two 3×3 convolutions with max pooling, a dense layer, dropout: a small,
    conventional image classifier (images [N, H, W, C] in [0, 1] → logits [N, classes])."""
    images = keras.Input(shape=tuple(image_shape), name="image")
    h = layers.Conv2D(32, 3, padding="same", activation="relu")(images)
    h = layers.MaxPooling2D(2, padding="same")(h)
    h = layers.Conv2D(64, 3, padding="same", activation="relu")(h)
    h = layers.MaxPooling2D(2, padding="same")(h)
    h = layers.Dense(128, activation="relu")(layers.Flatten()(h))
    logits = layers.Dense(classes)(layers.Dropout(0.3)(h))
    model = keras.Model(images, logits, name="classifier")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def trained_classifier(run_dir: str, splits: dict, seed: int = 0,
                       verbose: int = 0) -> tuple[keras.Model, dict]:
    """The run's classifier and its record ({"train_examples", "epochs",
    "test_accuracy"}): loaded from the run directory when it was trained on as many
    examples, else trained on `splits["train"]` and saved there."""
    path, record_path = (os.path.join(run_dir, name) for name in (CLASSIFIER, CLASSIFIER_JSON))
    train = splits["train"]
    if os.path.exists(path) and os.path.exists(record_path):
        with open(record_path) as f:
            record = json.load(f)
        if record.get("train_examples") == len(train) and record.get("epochs") == EPOCHS:
            return keras.models.load_model(path), record
    keras.utils.set_random_seed(seed)
    classifier = build_classifier(train.image_shape, len(train.label_names))
    epoch = epoch_variable()
    classifier.fit(make_dataset(train, BATCH_SIZE, shuffle_seed=seed, epoch=epoch,
                                with_labels=True),
                   epochs=EPOCHS, callbacks=[TrainingEpoch(epoch)], shuffle=False,
                   verbose=verbose)
    test = classifier.evaluate(make_dataset(splits["test"], 1000, with_labels=True),
                               return_dict=True, verbose=0)
    record = {"train_examples": len(train), "epochs": EPOCHS,
              "test_accuracy": float(test["accuracy"])}
    with atomic_path(path) as tmp:
        classifier.save(tmp)
    write_json(record_path, record)
    return classifier, record


def frechet_distance(classifier: keras.Model, real: np.ndarray, generated: np.ndarray
                     ) -> float | None:
    """The Fréchet distance between two sets of images in the classifier's feature space
    (its last hidden layer, 128 units): ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2(Σ_r·Σ_g)^½), the
    measure of FID with this data's own classifier in place of an Inception network.
    0 for identical sets; lower is closer to the data. None when a set has one image
    (a small folder's test split): it has no covariance."""
    if min(len(real), len(generated)) < 2:
        return None
    features = keras.Model(classifier.inputs, classifier.layers[-3].output)
    real_features, generated_features = (
        features.predict(images, batch_size=1000, verbose=0).astype(np.float64)
        for images in (real, generated))
    mean_r, mean_g = real_features.mean(axis=0), generated_features.mean(axis=0)
    cov_r, cov_g = np.cov(real_features.T), np.cov(generated_features.T)
    values, vectors = np.linalg.eigh(cov_r)
    sqrt_r = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.linalg.eigvalsh(sqrt_r @ cov_g @ sqrt_r)
    return float(np.sum((mean_r - mean_g) ** 2) + np.trace(cov_r) + np.trace(cov_g)
                 - 2 * np.sum(np.sqrt(np.clip(cross, 0, None))))


def predicted_classes(classifier: keras.Model, images: np.ndarray) -> np.ndarray:
    return np.argmax(classifier.predict(images, batch_size=1000, verbose=0), axis=-1)


def class_accuracy(kind: str, classifier: keras.Model, images: np.ndarray,
                   labels: np.ndarray, names) -> dict:
    """{"<kind>_class_accuracy": {name: the fraction of that class's images the
    classifier assigns to it}, "mean_<kind>_class_accuracy": their mean over classes}.
    Classes without images here are left out (a small folder's test split may lack some)."""
    correct = predicted_classes(classifier, images) == labels
    accuracy = {name: float(correct[labels == i].mean()) for i, name in enumerate(names)
                if np.any(labels == i)}
    return {f"{kind}_class_accuracy": accuracy,
            f"mean_{kind}_class_accuracy": float(np.mean(list(accuracy.values())))}


def judged_test_images(vae, classifier: keras.Model, images: np.ndarray,
                       labels: np.ndarray) -> dict:
    """The judge's accuracy per class on the real test images and on the model's
    reconstructions of them (each decoded from its own posterior mean, given its label
    for a conditional model), with their means over the classes.

    Why both, beside the samples': the real images' accuracy is what the judge itself
    reaches, so samples are held to the data rather than to 100 %; the reconstructions'
    is what the decoder draws of each class once the latent code is right, so a class
    whose samples fall below its reconstructions is drawn short by the prior, and one whose
    reconstructions fall below the real images by the decoder."""
    names = vae.config.label_names
    reconstructions = vae.reconstructions(
        images, labels if vae.config.conditional else None)
    return {**class_accuracy("test", classifier, images, labels, names),
            **class_accuracy("reconstruction", classifier, reconstructions, labels, names)}


def sample_classes(vae, classifier: keras.Model, per_class: int = SAMPLES_PER_CLASS,
                   seed: int = 0, real: np.ndarray | None = None,
                   temperature: float = 1.0) -> dict:
    """What the classifier sees in the model's samples, drawn at `temperature` (every
    level's σ scaled, as the samplers' `--temperature`).

    Conditional model: `per_class` draws from each class's prior →
    {"sample_class_accuracy": {name: fraction}, "mean_sample_class_accuracy"}.
    Unconditional model: per_class × classes prior draws →
    {"sample_class_histogram": {name: fraction of the samples}}.
    With `real` images (the test split): also the samples' `frechet_distance` to them.
    """
    names = vae.config.label_names
    if vae.config.conditional:
        inputs = every_class(vae.sample_inputs(per_class, seed, labels=np.zeros(per_class),
                                               temperature=temperature), len(names))
        images = vae.sample_images(inputs)
        found = class_accuracy("sample", classifier, images, inputs["label"], names)
    else:
        images = vae.sample_images(vae.sample_inputs(per_class * len(names), seed,
                                                     temperature=temperature))
        counts = np.bincount(predicted_classes(classifier, images), minlength=len(names))
        found = {"sample_class_histogram": {name: float(c / counts.sum())
                                            for name, c in zip(names, counts, strict=True)}}
    if real is not None:
        found["sample_frechet_distance"] = frechet_distance(classifier, real, images)
    return found
