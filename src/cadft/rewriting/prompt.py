"""What the generator is asked: the prompt alone (the paper's), or a rewrite prompt with
the original as a reference (the project's option, `rewrite_reference_in_prompt`).

    prompt_alone([{"role": "user", "content": "Tom has 3 apples and buys 2 more. How many?"}])
    # -> the same messages (a copy): the policy answers the question as in training

A string prompt stays the string (the policy continues it as training formats it; an
`openai:` generator sends it as one user turn). A conversational prompt must end with a
user turn, the turn the generator answers.

The rewrite prompt with a reference:

    messages = rewrite_messages(
        [{"role": "system", "content": "You are a careful tutor."},
         {"role": "user", "content": "Tom has 3 apples and buys 2 more. How many?"}],
        reference="3 + 2 = 5 apples.\\n#### 5",
    )
    # -> the system turn unchanged, then one user turn holding
    #    DEFAULT_REWRITE_TEMPLATE.format(question=<the user turn>, reference=<the reference>)

The generator sees the question AND the original solution, and is asked for its own
complete solution that reaches the same final answer. The rewrite is then scored, by the
acceptance step, on the original prompt alone (without the reference).
"""

from __future__ import annotations

import string

__all__ = ["DEFAULT_REWRITE_TEMPLATE", "TEMPLATE_FIELDS", "check_template", "prompt_alone", "rewrite_messages"]

TEMPLATE_FIELDS = ("question", "reference")

DEFAULT_REWRITE_TEMPLATE = (
    "Here is a problem and a reference solution.\n"
    "\n"
    "Problem:\n"
    "{question}\n"
    "\n"
    "Reference solution:\n"
    "{reference}\n"
    "\n"
    "Write your OWN complete solution to the problem, in your own words and your own style, "
    "as you would naturally solve it. Do not copy the reference and do not mention it. Your "
    "solution must reach the same final answer as the reference, and must end with that final "
    "answer written in the same form as the reference does (for example '#### <answer>', "
    "'\\boxed{{<answer>}}' or 'The answer is <answer>'). Reply with the solution only."
)


def check_template(template: str) -> None:
    """Raise a ValueError unless `template` is a str.format template whose only fields
    are `{question}` and `{reference}`, each used at least once (literal braces are `{{ }}`)."""
    if not isinstance(template, str):
        raise TypeError(f"the rewrite template must be a string, got {type(template).__name__}")
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as error:  # a lone '{' or '}'
        raise ValueError(f"invalid rewrite template ({error}); write a literal brace as '{{{{' or '}}}}'") from None
    unknown = sorted({repr(f) if f else "'{}' (positional)" for f in fields if f not in TEMPLATE_FIELDS})
    if unknown:
        raise ValueError(
            f"the rewrite template has unknown fields {', '.join(unknown)}; it may only use "
            "{question} and {reference} (write a literal brace as '{{' or '}}')"
        )
    missing = [f"{{{name}}}" for name in TEMPLATE_FIELDS if name not in fields]
    if missing:
        raise ValueError(f"the rewrite template must contain {' and '.join(missing)}")


def rewrite_messages(prompt, reference: str, template: str = DEFAULT_REWRITE_TEMPLATE) -> list[dict]:
    """Chat messages asking for a rewrite of `reference`, the answer to `prompt`.

    `prompt` is a plain string or a list of `{"role", "content"}` messages ending with a
    user turn. Every turn before the last user turn (system turns, earlier exchanges) is
    kept as it is; the last user turn's content becomes
    `template.format(question=<that content>, reference=reference)`. The input is not modified.
    """
    check_template(template)
    if not isinstance(reference, str):
        raise TypeError(f"the reference must be a string, got {type(reference).__name__}")
    if isinstance(prompt, str):
        return [{"role": "user", "content": template.format(question=prompt, reference=reference)}]
    if not isinstance(prompt, list) or not all(isinstance(m, dict) for m in prompt):
        raise TypeError(f"the prompt must be a string or a list of message dicts, got {type(prompt).__name__}")

    last_user = _last_user_turn(prompt)
    messages = [dict(m) for m in prompt]
    messages[last_user]["content"] = template.format(question=prompt[last_user]["content"], reference=reference)
    return messages


def prompt_alone(prompt) -> str | list[dict]:
    """The generation prompt without any reference: `prompt` itself (a copy), checked
    as `rewrite_messages` checks it."""
    if isinstance(prompt, str):
        return prompt
    if not isinstance(prompt, list) or not all(isinstance(m, dict) for m in prompt):
        raise TypeError(f"the prompt must be a string or a list of message dicts, got {type(prompt).__name__}")
    _last_user_turn(prompt)
    return [dict(m) for m in prompt]


def _last_user_turn(prompt: list[dict]) -> int:
    """The index of the last turn, which must be a user turn with text."""
    roles = [m.get("role") for m in prompt]
    if "user" not in roles:
        raise ValueError(f"the prompt has no user turn to rewrite (roles: {roles})")
    last_user = len(roles) - 1 - roles[::-1].index("user")
    if last_user != len(prompt) - 1:
        # A generation prompt must end with the user's turn; a trailing turn would be answered instead
        raise ValueError(f"the prompt must end with a user turn, got roles {roles}")
    question = prompt[last_user].get("content")
    if not isinstance(question, str):
        raise TypeError(f"the last user turn's content must be a string, got {type(question).__name__}")
    return last_user
