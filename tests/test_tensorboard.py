"""TensorBoard event files written by hand (jaxnas/common/tensorboard.py), checked against independent references:
CRC-32C's published check value, hand-assembled bytes of one event, and Google's protobuf library decoding every
record through a descriptor of TensorFlow's Event / Summary messages; the training loop streams its metrics there
when JAXNAS_TENSORBOARD=1."""

import glob
import struct

import jax.numpy as jnp
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from jaxnas.common import tensorboard as tb
from jaxnas.common.loop import run_loop


def test_crc32c_check_value_and_mask():
    assert tb.crc32c(b"123456789") == 0xE3069283  # RFC 3720, appendix B.4
    assert tb.masked_crc32c(b"") == 0xA282EAD8  # crc 0 rotated (0) plus TFRecord's mask constant


def test_one_event_byte_by_byte():
    value = b"\x0a\x04loss" + b"\x15" + struct.pack("<f", 0.25)  # tag (1), simple_value (2, 32-bit)
    summary = b"\x0a" + bytes([len(value)]) + value  # Summary.value (1)
    want = b"\x09" + struct.pack("<d", 1.5) + b"\x10\x03" + b"\x2a" + bytes([len(summary)]) + summary
    assert tb.event(1.5, 3, {"loss": 0.25}) == want
    assert tb.event(0.0, 300)[9:] == b"\x10\xac\x02"  # step 300 as a varint


def _event_class():
    """TensorFlow's Event / Summary / Summary.Value (the fields used here) as a protobuf descriptor."""
    f = descriptor_pb2.FileDescriptorProto(name="event_test.proto", package="t", syntax="proto3")
    T = descriptor_pb2.FieldDescriptorProto
    value = f.message_type.add(name="Value")
    value.field.add(name="tag", number=1, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    value.field.add(name="simple_value", number=2, type=T.TYPE_FLOAT, label=T.LABEL_OPTIONAL)
    summary = f.message_type.add(name="Summary")
    summary.field.add(name="value", number=1, type=T.TYPE_MESSAGE, type_name=".t.Value", label=T.LABEL_REPEATED)
    ev = f.message_type.add(name="Event")
    ev.field.add(name="wall_time", number=1, type=T.TYPE_DOUBLE, label=T.LABEL_OPTIONAL)
    ev.field.add(name="step", number=2, type=T.TYPE_INT64, label=T.LABEL_OPTIONAL)
    ev.field.add(name="file_version", number=3, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    ev.field.add(name="summary", number=5, type=T.TYPE_MESSAGE, type_name=".t.Summary", label=T.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("t.Event"))


def read_events(path):
    """Every record of an event file, its two CRCs checked, decoded by protobuf."""
    Event, out = _event_class(), []
    data = open(path, "rb").read()
    pos = 0
    while pos < len(data):
        (n,) = struct.unpack_from("<Q", data, pos)
        assert struct.unpack_from("<I", data, pos + 8)[0] == tb.masked_crc32c(data[pos:pos + 8])
        body = data[pos + 12:pos + 12 + n]
        assert struct.unpack_from("<I", data, pos + 12 + n)[0] == tb.masked_crc32c(body)
        out.append(Event.FromString(body))
        pos += 16 + n
    return out


def test_the_loop_streams_its_metrics_as_tensorboard_scalars(tmp_path, monkeypatch):
    monkeypatch.setenv(tb.ENV, "1")

    def step(i, state):
        return {"x": state["x"] + 1}, {"loss": 1.0 / (i + 1), "finite": True, "note": "text is left out"}

    run_loop(step, {"x": jnp.zeros(())}, end=3, settings={}, metrics_path=str(tmp_path / "metrics.jsonl"))
    (path,) = glob.glob(str(tmp_path / "tensorboard" / "events.out.tfevents.*"))
    events = read_events(path)
    assert events[0].file_version == "brain.Event:2"
    assert [e.step for e in events[1:]] == [1, 2, 3]
    for e, want in zip(events[1:], (1.0, 0.5, 1 / 3)):
        values = {v.tag: v.simple_value for v in e.summary.value}
        assert set(values) == {"loss", "seconds"} and values["loss"] == pytest.approx(want, rel=1e-6)
    monkeypatch.setenv(tb.ENV, "0")
    run_loop(step, {"x": jnp.zeros(())}, end=1, settings={}, metrics_path=str(tmp_path / "off" / "metrics.jsonl"))
    assert not (tmp_path / "off" / "tensorboard").exists()
