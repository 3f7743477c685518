"""The top and the bottom of the house: `vrbench.cli` (the command line) and
`vrbench.quickstart` (the main job, an experiment over the trainers and the harness) import
everything below them; `vrbench.errors` (the one error a user can cause) imports nothing, so
every layer raises it. Importing this package imports none of them."""
