"""Matching: the right story for follow-ups, none for confusers."""
# ruff: noqa: E501  (fixture sentences are quoted whole, as news text reads)

from pathlib import Path

import pytest

from worker.decide.match import (
    MatchConfig,
    affinities,
    article_view,
    decide_match,
    rank,
    score_story,
)
from worker.decide.profile import StoryProfile
from worker.decide.tracker import Tracker, TrackerConfig
from worker.models import Article, Story
from worker.stories.corpus import build_stories
from worker.stories.folder import read_corpus

FOLLOW_UP = Article(
    id="f1",
    title="Russian missiles downed Azerbaijan Airlines plane, Putin confirms",
    text=(
        "Russian President Vladimir Putin admitted his country's air defences were responsible for "
        "shooting down an Azerbaijan Airlines Embraer plane that crashed near Aktau in Kazakhstan on "
        "Christmas Day, killing 38 people. The plane was flying from Baku to Grozny."
    ),
)
CONFUSERS = [
    Article(
        id="jeju",
        title="JEJU air confirms 737-800 crash upon landing at Muan International Airport",
        text=(
            "JEJU air confirmed the crash of a Boeing 737-800 aircraft upon landing at Muan International "
            "Airport. The aircraft was operating from Bangkok to Muan carrying 175 passengers and six crew. "
            "Investigators are examining a possible bird strike and recovered the black boxes."
        ),
    ),
    Article(
        id="nba",
        title="Thunder beat Pacers in Game 7 to win NBA Finals",
        text="The Oklahoma City Thunder defeated the Indiana Pacers 103-91 in Game 7 of the NBA Finals on Sunday.",
    ),
]


CORPUS = Path(__file__).resolve().parents[1] / "config" / "corpus"

# Another Azerbaijan-Russia row, written for these tests: its leading names (Azerbaijan,
# Baku) are core to two tracked stories, the crash and the Baku climate summit.
BAKU_ROW = Article(
    id="baku-row",
    title="Azerbaijan cancels Russian concerts after deaths in police raids in Samara",
    text=(
        "Azerbaijan cancelled concerts and exhibitions organised by Russian groups after two ethnic "
        "Azeris died during police raids in the Russian city of Samara. The foreign ministry in "
        "Baku summoned Russia's envoy over what it called extrajudicial killings of ethnic Azeris. "
        "Azerbaijan's parliament withdrew from a meeting in Moscow, and Baku called off a visit by a "
        "Russian deputy prime minister. Russia's Investigative Committee confirmed the deaths of the "
        "two Azeri men in Samara. Azerbaijan demanded that Russia punish those responsible and pay "
        "compensation to the families."
    ),
)
AZAL_FOLLOW_UP = Article(
    id="azal-kazan",
    title="Azerbaijan Airlines suspends flights from Baku to Kazan",
    text=(
        "Azerbaijan Airlines has indefinitely suspended flights from Baku to Kazan, widening the "
        "suspensions it announced after its Embraer crashed near Aktau on its way to Grozny. "
        "Azerbaijan says the plane was hit by Russian air defences over Grozny."
    ),
)


@pytest.fixture(scope="module")
def seed_stories() -> list[Story]:
    documents = read_corpus(CORPUS)
    return build_stories(documents)


def story_with(stories: list[Story], phrase: str) -> Story:
    return next(s for s in stories if any(phrase in fact for fact in s.facts))


def test_follow_up_matches_its_story_with_reasons(seed_stories):
    decision = Tracker(seed_stories).decide(FOLLOW_UP)
    assert decision.match is not None
    assert decision.story_id == story_with(seed_stories, "Aktau").id
    assert any("shared" in reason for reason in decision.match.reasons)


@pytest.mark.parametrize("article", CONFUSERS, ids=lambda a: a.id)
def test_confuser_is_not_matched(seed_stories, article):
    assert Tracker(seed_stories).decide(article).match is None


def test_another_azerbaijan_russia_row_is_not_the_crash(seed_stories):
    """The issue's confuser, led by Azerbaijan, Azeris and Samara; Azerbaijan and Baku are
    core names of the crash story and of the Baku climate story."""
    assert Tracker(seed_stories).decide(BAKU_ROW).match is None


def test_a_follow_up_led_by_shared_names_still_matches_through_its_own(seed_stories):
    """Azerbaijan and Baku are contested, but Aktau, Grozny and Embraer are the crash's."""
    decision = Tracker(seed_stories).decide(AZAL_FOLLOW_UP)
    assert decision.story_id == story_with(seed_stories, "Aktau").id


def test_exclusion_rules_out_a_story():
    story = Story(
        "s",
        "Crash",
        ("Aktau",),
        ("a",),
        ("The Embraer plane crashed near Aktau in Kazakhstan.",),
        exclude=("drill",),
    )
    profile = StoryProfile("s", exclude=story.exclude)
    for fact in story.facts:
        profile.add_text(fact, learned=False)
    config = MatchConfig()
    assert (
        rank([profile], "Aktau drill", "An Embraer plane drill near Aktau in Kazakhstan.", config)[
            0
        ].score
        == 0.0
    )


def test_keyword_only_story_matches_on_its_keyword():
    tracker = Tracker([Story("f1", "Baku F1", ("grand prix",), (), (), keywords=("grand prix",))])
    article = Article(
        "a",
        "Azerbaijan Grand Prix wraps up in Baku",
        "The Formula 1 Azerbaijan Grand Prix was held in Baku.",
    )
    assert tracker.decide(article).story_id == "f1"
    assert tracker.decide(Article("b", "Other", "Nothing about racing here at all.")).match is None


def test_ambiguous_article_is_not_matched():
    profile_a = StoryProfile("a")
    profile_b = StoryProfile("b")
    for profile in (profile_a, profile_b):
        profile.add_text("Embraer plane crashed near Aktau Kazakhstan", learned=False)
    candidates = rank(
        [profile_a, profile_b],
        None,
        "The Embraer plane crashed near Aktau in Kazakhstan.",
        MatchConfig(),
    )
    assert decide_match(candidates, MatchConfig()) is None


LIBYA = Story(
    "libya",
    "Libya uprising",
    ("Gadhafi", "Libya"),
    ("a",),
    (
        "Libyan security forces loyal to Moammar Gadhafi fired on protesters in Benghazi.",
        "Gadhafi's son Saif al-Islam warned of civil war in Libya.",
        "Rebels in Benghazi took control of the city as Gadhafi's forces withdrew toward Tripoli.",
        "Libya's protesters demanded that Gadhafi step down after four decades in power.",
    ),
)


def test_neighbour_story_sharing_generic_words_is_rejected():
    """A Syria crackdown shares "security forces", "protesters" and even names Libya once,
    but its own protagonists (Assad, Deraa) are not the Libya story's."""
    syria = Article(
        "syria",
        "Syrian forces fire on protesters in Deraa",
        "Syrian security forces loyal to Bashar al-Assad fired on protesters in Deraa. "
        "Assad's government blamed armed gangs for the unrest in Deraa and Damascus. "
        "Activists in Deraa said the crackdown was harsher than in Libya.",
    )
    assert Tracker([LIBYA]).decide(syria).match is None


def test_follow_up_with_the_story_protagonists_is_matched():
    follow_up = Article(
        "libya-2",
        "Gadhafi forces shell rebels near Benghazi",
        "Forces loyal to Moammar Gadhafi shelled rebel positions outside Benghazi. "
        "Libya's rebels said Gadhafi's troops were advancing from Tripoli.",
    )
    assert Tracker([LIBYA]).decide(follow_up).story_id == "libya"


def test_off_topic_sentence_of_an_accepted_article_does_not_teach_the_profile():
    profile = StoryProfile.for_config("libya", MatchConfig())
    for fact in LIBYA.facts:
        profile.add_text(fact, learned=False)
    config = MatchConfig()
    assert (
        profile.relevance("Gadhafi's forces shelled Benghazi again.", config) >= config.learn_gate
    )
    assert profile.relevance("Assad's troops stormed Deraa overnight.", config) < config.learn_gate


def test_learned_window_is_bounded_and_forgets_the_oldest_sentences():
    profile = StoryProfile.for_config("s", MatchConfig(learn_window=2))
    profile.add_text("Gadhafi Benghazi", learned=False)
    for sentence in ("Misrata shelled", "Ajdabiya retaken", "Brega oil port"):
        profile.add_text(sentence, learned=True)
    assert len(profile.recent) == 2
    assert profile.weight("misrata") == 0.0
    assert profile.weight("brega") > 0.0
    # The incrementally kept norm equals one computed from scratch.
    assert abs(profile.norm() ** 2 - sum(w * w for w in profile.weights.values())) < 1e-9


EGYPT = Story(
    "egypt",
    "Egypt protests",
    ("Mubarak", "Cairo"),
    ("b",),
    (
        "Protesters in Cairo demanded that Hosni Mubarak step down.",
        "Mubarak's police fired tear gas at crowds in Tahrir Square in Cairo.",
        "ElBaradei joined the protesters in Cairo against Mubarak.",
        "Egypt's army said it would not fire on protesters in Tahrir Square.",
    ),
)


def test_untracked_topic_sharing_one_generic_entity_stays_unmatched():
    """Its protagonists (Assad, Homs) belong to no tracked story; one shared "Cairo"
    (an Arab League meeting) does not make it an Egypt or a Libya article."""
    syria = Article(
        "syria-2",
        "Assad forces shell Homs as Arab League meets in Cairo",
        "Forces loyal to Bashar al-Assad shelled Homs for a third day. "
        "Activists in Homs said Assad's tanks entered the Baba Amr district of Homs. "
        "The Arab League met in Cairo to discuss Assad's crackdown in Homs.",
    )
    assert Tracker([LIBYA, EGYPT]).decide(syria).match is None


def test_article_goes_to_the_story_that_owns_its_protagonists():
    """Both stories mention protesters and security forces; the article's names (Mubarak,
    Tahrir) are the Egypt story's own, so Egypt wins even though Libya learned "Cairo"."""
    egypt = Article(
        "egypt-2",
        "Mubarak supporters attack protesters in Tahrir Square",
        "Supporters of Hosni Mubarak charged protesters in Tahrir Square on camels. "
        "Protesters in Tahrir Square said Mubarak's police had stood aside.",
    )
    assert Tracker([LIBYA, EGYPT]).decide(egypt).story_id == "egypt"


def test_one_line_story_matches_a_close_report_sharing_few_rare_words():
    """A story the corpus gives one headline knows two rare words; a report that shares
    most of its terms is about it, even though it cannot share three rare ones."""
    tajik = Story(
        id="tajik",
        title="Tajikistan buys presidential plane",
        key_terms=("Tajikistan",),
        documents=("d",),
        facts=("Tajikistan Buys Presidential Plane From Mexico For $92 Million",),
    )
    report = Article(
        "t1",
        "Mexico's presidential plane lands in Tajikistan",
        "The presidential plane Mexico sold to Tajikistan for $92 million landed in Dushanbe. "
        "Tajikistan's president will use the plane for official trips.",
    )
    other = Article(
        "t2",
        "Tajikistan and Kyrgyzstan sign border deal",
        "The leaders of Tajikistan and Kyrgyzstan signed a deal ending a long border dispute.",
    )
    tracker = Tracker([tajik, LIBYA, EGYPT])
    assert tracker.decide(report).story_id == "tajik"
    assert tracker.decide(other).match is None


def test_learned_sentences_teach_names_only_beside_the_corpus_protagonists():
    """A Libya report may compare Gadhafi with Assad; a sentence about Assad alone (that
    passed the relevance gate on shared words) must not make Assad a Libya protagonist."""
    profile = StoryProfile.for_config("libya", MatchConfig())
    for fact in LIBYA.facts:
        profile.add_text(fact, learned=False)
    profile.add_text("Like Gadhafi in Benghazi, Assad sent tanks against protesters.", learned=True)
    profile.add_text("Assad's forces fired on protesters in Homs and Damascus.", learned=True)
    assert profile.names["assad"] == 1  # the comparison with Gadhafi taught it once
    assert "homs" not in profile.names and "damascus" not in profile.names
    assert "homs" in {t for t in profile.learned}  # its words still count as terms


def test_top_names_answers_each_limit_it_is_asked():
    """The name ranking is cached per limit: asking for 25 names first must not make a
    later question about the 3 most repeated ones answer with 25."""
    profile = StoryProfile.for_config("s", MatchConfig())
    for count, name in enumerate(["Aktau", "Grozny", "Kadyrov", "Embraer", "Chechnya"], 1):
        for _ in range(count):
            profile.add_text(f"{name} was named again in the report.", learned=False)
    assert len(profile.top_names(25)) == 5
    assert profile.top_names(3) == {"chechnya", "embraer", "kadyrov"}


POW_REPORT = Article(
    "pows",
    "Ukraine shows captured NK soldiers",
    "Ukraine has released video of two wounded North Korean soldiers captured in Russia's "
    "Kursk region. The two North Korean soldiers were taken to Kyiv, where Ukrainian "
    "security services question the NK POWs. One of the North Korean POWs said he was told "
    "he was going to training, not to war. Zelensky said Ukraine could hand the NK POWs to "
    "Kim Jong-un in exchange for Ukrainians held in Russia.",
)


def test_article_sharing_most_of_a_story_vocabulary_is_about_it_despite_new_names(seed_stories):
    """Its protagonists (the POWs, "NK") are new to every story, so no story owns its names;
    but it shares the North Korean troop story's words so strongly that it is that story."""
    kursk = story_with(seed_stories, "North Korean")
    assert Tracker(seed_stories).decide(POW_REPORT).story_id == kursk.id
    names_only = TrackerConfig(match=MatchConfig(strong_score=1.0))
    assert Tracker(seed_stories, names_only).decide(POW_REPORT).match is None


def test_neighbour_that_shares_the_story_vocabulary_needs_one_of_its_core_names():
    """Uprisings read alike: a Syria report can share most of a Libya story's words. A
    strong score lifts the name rule only when the article names one of the story's core
    names too, so the neighbour stays out however closely it is worded."""
    syria = Article(
        "syria-3",
        "Assad's forces fire on protesters in Homs",
        "Syrian security forces loyal to Bashar al-Assad fired on protesters in Homs. "
        "Assad's brother warned of civil war in Syria. "
        "Rebels in Homs took control of the city as Assad's forces withdrew toward Damascus. "
        "Syria's protesters demanded that Assad step down after four decades in power.",
    )
    config = MatchConfig()
    profile = StoryProfile.for_config("libya", config)
    for fact in LIBYA.facts:
        profile.add_text(fact, learned=False)
    strong = rank([profile], syria.title, syria.text, MatchConfig(min_affinity=0.0))[0]
    assert strong.score >= config.strong_score  # the words alone would claim it
    assert Tracker([LIBYA, EGYPT]).decide(syria).match is None


CRASH = Story(
    "crash",
    "Plane crash near Aktau",
    ("Aktau",),
    ("a",),
    (
        "An Azerbaijan Airlines plane flying from Baku to Grozny crashed near Aktau, killing 38.",
        "Baku said the plane was hit over Grozny by Russian air defences.",
        "Investigators from Baku and Astana examined the wreck of the plane near Aktau.",
    ),
)
SUMMIT = Story(
    "summit",
    "Climate summit in Baku",
    ("COP29",),
    ("b",),
    (
        "The COP29 climate summit in Baku agreed a finance goal for poorer nations.",
        "Delegates in Baku argued over climate finance until late on Sunday.",
        "Baku hosted negotiators from nearly 200 countries at COP29.",
    ),
)
ROW = Article(
    "row",
    "Baku summons Russian envoy over deaths in Samara raids",
    "Baku summoned the Russian envoy after two men died in police raids in Samara. "
    "Officials in Baku said Russian investigators must explain the deaths in Samara. "
    "Doctors in Baku examined the bodies of the two men killed in Samara. "
    "Baku cancelled concerts and exhibitions that Russian cultural groups had organised. "
    "Its parliament withdrew from a meeting of lawmakers and called off a visit by a deputy "
    "prime minister.",
)


def _profiles(*stories: Story) -> list[StoryProfile]:
    tracker = Tracker(list(stories))
    return [tracker._profiles[story.id] for story in stories]


def test_a_name_two_stories_use_alike_is_shared_between_them_not_owned_by_both():
    """Baku is as much the summit's as the crash's: each owns its share of the article's
    Baku, so neither owns most of an article led by Baku (it used to be both, in full)."""
    config = MatchConfig()
    view = article_view(ROW.title, ROW.text, config)
    crash, summit = affinities(_profiles(CRASH, SUMMIT), view, config)
    assert crash + summit <= 1.0
    assert crash < config.min_affinity and summit < config.min_affinity
    # And so, through `rank`, the row is neither story's.
    assert Tracker([CRASH, SUMMIT]).decide(ROW).match is None


def test_a_leading_name_core_to_another_story_does_not_make_the_article_about_this_one():
    config = MatchConfig()
    crash = _profiles(CRASH, SUMMIT)[0]
    view = article_view(ROW.title, ROW.text, config)
    assert "baku" in view.leading and "baku" in crash.top_names(config.core_names)
    alone = score_story(crash, view, config, affinity=0.0)
    # Below the cosine that would make it about the crash whoever leads it.
    assert config.threshold <= alone.score < config.strong_score
    contested = score_story(crash, view, config, affinity=0.0, contested=frozenset({"baku"}))
    assert contested.score <= config.threshold * 0.5


def test_an_article_led_by_a_grown_storys_side_names_alone_needs_one_of_its_core_names():
    """A months-old Libya story has learned side names from comparisons (Assad, Damascus,
    Aleppo). A Syria report led by those alone is owned by the story on paper, yet names
    none of its core protagonists: it is about another story. Before, the Libya story of
    Timeline17 kept claiming Syria reports for ten months after its last Libya article."""
    config = MatchConfig()
    profile = StoryProfile.for_config("libya", config)
    core = ["Gaddafi", "Libya", "Tripoli", "Benghazi", "Misrata", "Sirte", "Jalil", "Brega"]
    core += ["Zawiya", "Ajdabiya"]
    for name in core:
        for _ in range(6):
            profile.add_text(f"Fighting around {name} went on as rebels advanced.", learned=False)
    side = ["Assad", "Damascus", "Aleppo", "Homs", "Annan", "Kofi", "Ashton", "Erdogan"]
    side += ["Juppe", "Hague", "Clinton", "Rasmussen", "Araud", "Churkin", "Pillay", "Ban"]
    side += ["Moussa", "Zuma", "Sarkozy", "Cameron"]
    for name in side:
        profile.add_text(f"It was said that {name} had spoken about the uprising.", learned=False)
    assert len(profile.names) >= config.story_names  # a grown story, not a young one
    title = "Fighting around Aleppo goes on as rebels advance on Assad"
    text = (
        "Fighting around Aleppo went on as rebels advanced against Assad. Annan had spoken "
        "about the uprising. Fighting around Homs went on as rebels advanced. Assad said "
        "rebels advanced on Damascus. It was said that Assad had spoken about the uprising "
        "in Damascus."
    )
    view = article_view(title, text, config)
    (owned,) = affinities([profile], view, config)
    assert owned >= config.min_affinity  # the side names are the story's on paper
    assert not view.dominant & profile.top_names(config.core_names)
    cosine = sum(w * profile.weight(t) for t, w in view.vector.items()) / (
        view.norm * profile.norm()
    )
    assert cosine >= config.threshold  # worded like the story: the names must decide
    assert decide_match(rank([profile], title, text, config), config) is None
    # The same story still owns a report its core names lead.
    libya = article_view(
        "Rebels take Sirte", "Rebels took Sirte and Brega from Gaddafi's forces. " * 3, config
    )
    (owned,) = affinities([profile], libya, config)
    assert score_story(profile, libya, config, owned).score > config.threshold
