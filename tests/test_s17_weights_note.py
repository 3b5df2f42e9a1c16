"""A model file's own `weights_format` (no importer origin) is named in the weights note: the note read
"weights mxfp4 (; the checkpoint's format)" with an empty origin (session-17 review)."""
import dataclasses

from workloads.builder import declared_weights_note
from workloads.models import load_model


def test_a_model_files_own_weights_format_names_its_field():
    m = dataclasses.replace(load_model("llama3_8b"), weights_format="mxfp4")
    assert declared_weights_note(m, "mxfp4") == ("mxfp4", "weights mxfp4 (model 'llama3_8b' weights_format; the "
                                                          "checkpoint's format)")
    assert declared_weights_note(m, "bf16")[1] == ("weights bf16 (given; overrides the checkpoint's mxfp4 from model "
                                                   "'llama3_8b' weights_format)")
