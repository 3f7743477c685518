"""Other harnesses' formats, in and out: `rescore` grades the responses another harness
wrote (MathVista, MATH-V, lmms-eval, vrbench) with vrbench's grader; `lmeval` exports
vrbench's tasks as lm-evaluation-harness tasks scored by that same grader."""
