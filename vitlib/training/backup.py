"""Resumable training: a run may be killed at any moment (Ctrl-C, a lost machine, SIGKILL) and the same command
resumes after its last finished epoch, losing nothing and writing nothing twice.

Keras' ``BackupAndRestore`` overwrites one weights file in place, so a run killed while writing it leaves a file
that no longer opens ("bad object header version number"), and the restart fails. :class:`Backup` writes each
backup to a new file and then names it in the metadata, which is replaced in one rename: at every moment the
metadata names a complete file. An epoch is finished once its backup is named; the callbacks that write its row of
``history.csv`` and its ``best.keras`` run before it, and :func:`trim_history` drops the row of an epoch that
was stopped after its row but before its backup (that epoch runs again). :func:`restore` loads the backup before
``fit``, which then starts at the epoch after it (``initial_epoch``).
"""
import json
import os
import shutil
from pathlib import Path

import keras

METADATA = "training_metadata.json"  # the backup's epoch, weights file and staged files, replaced in one rename

def replace_atomically(path, write):
    """``write(temporary_path)``, then rename the result onto ``path`` (one step: a reader sees the old or the new
    file, never a half-written one). The temporary name keeps ``path``'s suffixes, as Keras' savers require."""
    path = Path(path)
    partial = path.with_name(f"partial-{path.name}")
    write(partial)
    with open(partial, "rb+") as f:  # on disk before it is named (a power cut, not only a killed process)
        os.fsync(f.fileno())
    os.replace(partial, path)


def staged(path, epoch):
    """Where a file that must change only with the backup (``best.keras``) is written at the end of ``epoch``
    (counted from 1): ``best-epoch3.keras``. :class:`Backup` moves it into place once that epoch's backup is named."""
    path = Path(path)
    return path.with_name(f"{path.stem}-epoch{epoch}{path.suffix}")


class Backup(keras.callbacks.Callback):
    """A callback that backs up the training model (its weights and its optimiser's) at the end of every epoch, safe to
    kill while it writes; :func:`restore` resumes from it.

    ``staged_files``: files such as ``best.keras`` that belong to the epoch that wrote them. Their writer puts them at
    :func:`staged` paths; the backup names them with its epoch and only then moves them into place, so a run stopped
    before the epoch's backup keeps the previous ``best.keras`` (that epoch runs again).
    It keeps its backup when training ends: :func:`finish` removes it once the run's results are written, so a
    run killed between its last epoch and its results resumes with nothing left to train."""

    def __init__(self, backup_dir, staged_files=()):
        super().__init__()
        self.backup_dir, self.staged_files = Path(backup_dir), [Path(p) for p in staged_files]

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch{done}.weights.h5"
        replace_atomically(self.backup_dir / name, lambda p: self.model.save_weights(p, overwrite=True))
        moves = [file.name for file in (staged(p, done) for p in self.staged_files) if file.exists()]
        metadata = {"epoch": done, "weights": name, "moves": moves}
        replace_atomically(self.backup_dir / METADATA, lambda p: Path(p).write_text(json.dumps(metadata)))
        _move_and_tidy(metadata, self.staged_files)  # the epoch is done: its staged files take their places
        for old in self.backup_dir.glob("*.weights.h5"):  # the named file is complete: older ones can go
            if old.name != name:
                old.unlink()


def restore(model, backup_dir, staged_files=()):
    """Load the backup in ``backup_dir`` into the compiled ``model`` and return the number of epochs it holds, the
    ``initial_epoch`` to pass to ``fit`` (0 without a backup). Staged files are moved into place where the backup
    names them (a stop cut the move short), and dropped where it does not (their epoch runs again)."""
    path = Path(backup_dir) / METADATA
    metadata = json.loads(path.read_text()) if path.exists() else {}  # none: stopped before the first backup
    _move_and_tidy(metadata, [Path(p) for p in staged_files])
    if not metadata:
        return 0
    weights = Path(backup_dir) / metadata["weights"]
    if not weights.exists():
        raise FileNotFoundError(f"The backup in {backup_dir} names {weights.name}, which is missing: the backup is "
                                f"damaged. Delete {backup_dir} to train this run afresh.")
    model.optimizer.build(model.trainable_variables)  # its slots must exist to take their saved values
    model.load_weights(weights)
    return metadata["epoch"]


def _move_and_tidy(metadata, finals):
    """Move the staged files the backup names into place; delete the others (from an epoch that was not finished)."""
    for final in finals:
        for file in final.parent.glob(f"{final.stem}-epoch*{final.suffix}"):
            if file.name in metadata.get("moves", ()):
                os.replace(file, final)
            else:
                file.unlink()


def epochs_done(out):
    """How many epochs the backup in ``out/backup`` holds (0 when there is none)."""
    try:
        return json.loads((Path(out) / "backup" / METADATA).read_text())["epoch"]
    except FileNotFoundError:
        return 0


def trim_history(out):
    """Keep only the rows of ``out/history.csv`` for epochs the backup holds (the others run again)."""
    history = Path(out) / "history.csv"
    if not history.exists():
        return
    done, (header, *rows) = epochs_done(out), history.read_bytes().splitlines(keepends=True) or [b""]
    kept = [row for row in rows if row.split(b",")[0].isdigit() and int(row.split(b",")[0]) < done]
    if len(kept) < len(rows):
        replace_atomically(history, lambda p: Path(p).write_bytes(b"".join([header, *kept])))


def finish(out):
    """The run's results are written: drop its backup (the next run with this folder starts afresh). Renamed away
    first, in one step, so that a stop halfway through deleting it cannot leave a backup without its weights."""
    backup, done = Path(out) / "backup", Path(out) / "backup.finished"
    if backup.exists():
        shutil.rmtree(done, ignore_errors=True)
        os.replace(backup, done)
    shutil.rmtree(done, ignore_errors=True)
