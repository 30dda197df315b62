"""stories.toml edits applied to the stories built from the corpus.

What this module is for: the hand edits a user makes on top of the automatic grouping:
rename a story, merge several into one, split the passages that mention some keywords
into a story of their own, add keywords or exclusions, route a story to destinations,
and define keyword-only stories with no corpus passage.

What it must not do: group passages or guess what a rule meant. A rule that cannot be
applied is a configuration error, and every such error is reported at once (ConfigError),
like the rest of the configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from worker.errors import ConfigError
from worker.models import DestinationConfig, Story, StoryRule
from worker.text.terms import tokenize


def _find(stories: Sequence[Story], needle: str) -> tuple[int | None, str]:
    """(index, "") of the story with id `needle`, else of the one story whose title holds
    `needle` as whole words; (None, why) when no story or several stories fit."""
    for i, story in enumerate(stories):
        if story.id == needle:
            return i, ""
    fits = [i for i, story in enumerate(stories) if _mentions(story.title, [needle])]
    if len(fits) == 1:
        return fits[0], ""
    if not fits:
        return None, f"match {needle!r} names no story"
    ids = ", ".join(stories[i].id for i in fits)
    return None, f"match {needle!r} fits {len(fits)} story titles ({ids}): give an id"


def _mentions(sentence: str, phrases: Sequence[str]) -> bool:
    """True when the sentence holds one of the phrases as whole words (case-insensitive)."""
    words = f" {' '.join(tokenize(sentence))} "
    return any(f" {' '.join(tokenize(phrase))} " in words for phrase in phrases if phrase.strip())


def _keyword_story(rule: StoryRule) -> Story:
    return Story(
        id=rule.id,
        title=rule.title or rule.id,
        key_terms=rule.keywords,
        documents=(),
        facts=(),
        keywords=rule.keywords,
        exclude=rule.exclude,
        destinations=rule.destinations,
        known_as_of=rule.known_as_of,
    )


def _split(story: Story, rule: StoryRule, problems: list[str]) -> tuple[Story, Story] | None:
    """The story without the passages that mention a keyword, and the new story of them."""
    moved = tuple(f for f in story.facts if _mentions(f, rule.keywords))
    kept = tuple(f for f in story.facts if f not in moved)
    where = f"stories.toml: story {rule.id!r}: split of {story.id!r}"
    if not moved:
        problems.append(f"{where}: no passage mentions {', '.join(rule.keywords)}")
        return None
    if not kept:
        problems.append(f"{where}: every passage mentions the keywords; nothing would remain")
        return None
    key_terms = tuple(
        dict.fromkeys(
            (*rule.keywords, *(t for t in story.key_terms if any(_mentions(f, [t]) for f in moved)))
        )
    )
    new = Story(
        id=rule.id,
        title=rule.title or moved[0],
        key_terms=key_terms,
        # Facts do not remember their document: both stories keep the original's list.
        documents=story.documents,
        facts=moved,
        keywords=rule.keywords,
        exclude=rule.exclude,
        destinations=rule.destinations if rule.destinations is not None else story.destinations,
        known_as_of=rule.known_as_of or story.known_as_of,
    )
    return replace(story, facts=kept), new


def _merge(story: Story, other: Story) -> Story:
    return replace(
        story,
        key_terms=tuple(dict.fromkeys(story.key_terms + other.key_terms)),
        documents=tuple(dict.fromkeys(story.documents + other.documents)),
        facts=tuple(dict.fromkeys(story.facts + other.facts)),
        keywords=tuple(dict.fromkeys(story.keywords + other.keywords)),
        exclude=tuple(dict.fromkeys(story.exclude + other.exclude)),
        # The later date: by then the user knew both parts (the earlier one would let
        # reports of the later-dated part alert as news).
        known_as_of=max(
            (d for d in (story.known_as_of, other.known_as_of) if d is not None), default=None
        ),
    )


def _edit(result: list[Story], index: int, rule: StoryRule, problems: list[str]) -> list[Story]:
    """Merge, rename and route the story at `index` per `rule`."""
    story = result[index]
    absorbed: set[int] = set()
    for other_id in rule.merge:
        other = next((i for i, s in enumerate(result) if s.id == other_id), None)
        if other is None or other == index:
            problems.append(f"stories.toml: story {rule.id!r}: merge {other_id!r} names no story")
            continue
        absorbed.add(other)
        story = _merge(story, result[other])
    result[index] = replace(
        story,
        id=rule.id,
        title=rule.title or story.title,
        keywords=tuple(dict.fromkeys(story.keywords + rule.keywords)),
        exclude=tuple(dict.fromkeys(story.exclude + rule.exclude)),
        destinations=rule.destinations if rule.destinations is not None else story.destinations,
        known_as_of=rule.known_as_of or story.known_as_of,
    )
    return [s for i, s in enumerate(result) if i not in absorbed]


def apply_rules(
    stories: Sequence[Story], rules: Sequence[StoryRule], known_as_of: datetime | None = None
) -> list[Story]:
    """Apply the rules in file order; raise ConfigError listing every rule that failed.

    - no `match`: a keyword-only story is added;
    - `match` + `split = true`: the facts of the matched story that mention a keyword
      move to a new story with the rule's id (the matched story keeps its id);
    - `match` otherwise: the matched story takes the rule's id, title, keywords,
      exclusions and destinations, and absorbs the stories named in `merge`;
    - `known_as_of` (stories.toml's top level) dates every story no rule dated.
    """
    result = list(stories)
    problems: list[str] = []
    for rule in rules:
        if rule.match is None:
            result.append(_keyword_story(rule))
            continue
        index, why = _find(result, rule.match)
        if index is None:
            problems.append(f"stories.toml: story {rule.id!r}: {why}")
            continue
        if rule.split:
            parts = _split(result[index], rule, problems)
            if parts is not None:
                result[index] = parts[0]
                result.insert(index + 1, parts[1])
            continue
        result = _edit(result, index, rule, problems)
    ids = [story.id for story in result]
    problems.extend(
        f"stories.toml: story id {story_id!r} is used by two stories"
        for story_id in sorted({i for i in ids if ids.count(i) > 1})
    )
    if problems:
        raise ConfigError(problems)
    if known_as_of is None:
        return result
    return [s if s.known_as_of else replace(s, known_as_of=known_as_of) for s in result]


def routing_problems(
    stories: Sequence[Story], destinations: Sequence[DestinationConfig]
) -> list[str]:
    """A destination's `stories` naming no story: its alerts would silently go nowhere
    (story ids come from the corpus, so editing it can change them)."""
    known = {story.id for story in stories}
    return [
        f"destinations.toml: destination {destination.id!r}: stories: no story has the id "
        f"{story_id!r} (`storywatch stories` lists the ids)"
        for destination in destinations
        for story_id in destination.stories or ()
        if story_id not in known
    ]
