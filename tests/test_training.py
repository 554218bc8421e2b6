"""The shared epoch loop checkpoints every epoch and resumes exactly."""
import torch

from latentsketch.training import fit


def make(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 1)
    return model, torch.optim.Adam(model.parameters(), lr=0.1)


def run(model, optimizer, checkpoint, epochs, config=None, stop_at=None):
    gen = torch.Generator().manual_seed(1)

    def epoch_fn(epoch):
        if stop_at is not None and epoch == stop_at:
            raise KeyboardInterrupt  # stands in for a kill between epochs
        x = torch.randn(16, 3, generator=gen)
        loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    return fit(name="toy", epochs=epochs, run_epoch=epoch_fn, checkpoint=checkpoint,
               config=config or {"lr": 0.1}, modules={"model": model},
               optimizers={"opt": optimizer}, generators={"data": gen})


def test_interrupted_training_resumes_to_the_same_result(tmp_path):
    reference = run(*make(), tmp_path / "a.pt", epochs=5)
    model, optimizer = make()
    try:
        run(model, optimizer, tmp_path / "b.pt", epochs=5, stop_at=3)
    except KeyboardInterrupt:
        pass
    resumed_model, resumed_opt = make(seed=123)  # fresh process: other initial weights
    history = run(resumed_model, resumed_opt, tmp_path / "b.pt", epochs=5)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    assert [h["loss"] for h in history] == [h["loss"] for h in reference]


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    run(*make(), tmp_path / "c.pt", epochs=2)
    history = run(*make(), tmp_path / "c.pt", epochs=2, config={"lr": 0.2})
    assert [h["epoch"] for h in history] == [1, 2]


def test_finished_training_reruns_nothing(tmp_path):
    first = run(*make(), tmp_path / "d.pt", epochs=3)
    again = run(*make(seed=9), tmp_path / "d.pt", epochs=3)
    assert again == first
