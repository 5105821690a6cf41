import json

from qaug.cli import main


def test_demo_writes_metrics_and_sample_grid(tmp_path) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--image-size", "8", "--epochs", "1", "--qgan-steps", "3"]) == 0
    metrics = json.loads((out / "demo.json").read_text())
    assert 0.0 <= metrics["hqcnn_test_accuracy"] <= 1.0
    assert set(metrics["qgan_label_fidelity"]) == {"0", "1", "2"}
    assert (out / "qgan_samples.png").stat().st_size > 1000
