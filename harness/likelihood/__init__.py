"""Models as distributions: token log-probabilities of completions under a checkpoint
(`logprobs`, shared by the trainers and the KL measurement) and the KL between two
checkpoints on the same prompts (`kl`)."""
