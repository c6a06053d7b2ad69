"""Reading the number of clusters, and the clusters, an instruction asks for."""

import pytest

from clusteragent.stated import stated_count, stated_values


@pytest.mark.parametrize("instruction, k_min, k_max", [
    ("Group these assistant queries into 5 groups by domain.", 5, 5),
    ("Sort the reviews into three categories by sentiment.", 3, 3),
    ("Cluster the posts by topic into a dozen clusters.", 12, 12),
    ("Split them into roughly 7", 7, 7),
    ("Group the tickets into between four and eight topics.", 4, 8),
    ("Group the tickets into 3-5 groups.", 3, 5),
    ("Cluster into two or three groups by tone.", 2, 3),
    ("between 8 and 4 groups", 4, 8),
    ("Group them by theme, at most 10 themes.", None, 10),
    ("Find fewer than 6 clusters.", None, 5),
    ("10 clusters or fewer, by topic", None, 10),
    ("Cluster by intent with at least 4 groups.", 4, None),
    ("more than 3 groups by topic", 4, None),
    ("Group the news into five broad topics.", 5, 5),
])
def test_a_stated_number_of_groups_is_read(instruction, k_min, k_max):
    stated = stated_count(instruction)
    assert stated is not None and (stated.k_min, stated.k_max) == (k_min, k_max)
    assert stated.words.lower() in instruction.lower()


@pytest.mark.parametrize("instruction", [
    "Group these 2,000 assistant queries by the domain of life they are about.",
    "Group 300 tweets into topics.",
    "Cluster the posts from 2021 by topic.",
    "Group the tweets about the top 10 airlines by what the customer wants.",
    "Cluster the posts by the 20 newsgroups they were posted to.",
    "Group the 5-star reviews by topic.",
    "Sort the texts into 0 groups.",
    "Put each review into one category by sentiment.",
    "Cluster the messages by topic.",
])
def test_numbers_that_count_something_else_set_nothing(instruction):
    assert stated_count(instruction) is None


def test_the_number_next_to_the_groups_wins_over_an_earlier_one():
    stated = stated_count("Put each of the 300 reviews into one of two categories.")
    assert (stated.k_min, stated.k_max) == (2, 2)


@pytest.mark.parametrize("instruction, values", [
    ("Cluster the comments by sentiment: positive, negative, ambiguous or neutral.",
     ["positive", "negative", "ambiguous", "neutral"]),
    ("Cluster the utterances by dialog act: what the speaker does with the utterance (inform, ask, request, promise).",
     ["inform", "ask", "request", "promise"]),
    ("Sort the news into sports, business, politics and technology", ["sports", "business", "politics", "technology"]),
    ("Sort into 3 buckets: urgent, normal, low", ["urgent", "normal", "low"]),
    ("Sort the reviews as positive, negative, or mixed.", ["positive", "negative", "mixed"]),
    ("Group these into questions and complaints.", ["questions", "complaints"]),
    ('Cluster by language: English, French and German', ["English", "French", "German"]),
    ("Sort the reviews into either praise or complaints.", ["praise", "complaints"]),
    ("Group by stance (for vs. against)", ["for", "against"]),
    ("Is each review positive or negative?", ["positive", "negative"]),
    ("Is it positive, negative or neutral?", ["positive", "negative", "neutral"]),
    ("Tell me whether each ticket is about billing or shipping.", ["billing", "shipping"]),
    ("Are these messages questions or complaints?", ["questions", "complaints"]),
    ("Group the posts. Is each one about sports or politics?", ["sports", "politics"]),
    ("Cluster the tickets by whether they are urgent or not.", ["urgent", "not urgent"]),
    ("Is each sentence positive, negative or neutral for the company?", ["positive", "negative", "neutral"]),
    ("Sort into billing, shipping or problems with delivery.", ["billing", "shipping", "problems with delivery"]),
])
def test_the_values_an_instruction_lists_are_read_in_its_words(instruction, values):
    assert stated_values(instruction) == values


@pytest.mark.parametrize("instruction", [
    "Cluster the assistant commands by scenario: the area of the assistant they address.",
    "Cluster the texts by their writing style (the form they are written in), not by topic or language.",
    "Group the reviews into clusters by aspect and sentiment.",
    "Group them into topics and subtopics.",
    "Cluster by topic, such as sports and politics.",
    "Classify the tickets (e.g. billing, shipping).",
    "Group these assistant queries into 5 groups by domain.",
    "Cluster as you see fit.",
    "Group these comments (English and French) by topic.",
    "Sort them into positive and positive.",
    "Is the customer happy?",
    "What is each review about?",
    "Is each text written in English or French, and what is it about?",
])
def test_a_clause_examples_or_a_count_list_no_values(instruction):
    assert stated_values(instruction) == []
