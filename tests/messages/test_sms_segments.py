from postpurchase.messages.sms_segments import count_segments


def test_gsm7_single_and_split():
    assert count_segments("a" * 160).segments == 1
    assert count_segments("a" * 161).segments == 2
    assert count_segments("a" * 306).segments == 2
    assert count_segments("a" * 307).segments == 3
    assert count_segments("").segments == 0


def test_gsm7_extension_characters_count_twice_and_stay_whole():
    assert count_segments("€" * 80).units == 160
    assert count_segments("€" * 80).segments == 1
    # 152 plain + one escape pair: the pair does not fit in 153, so it moves whole.
    text = "a" * 152 + "€" + "a" * 10
    result = count_segments(text)
    assert (result.encoding, result.units, result.segments) == ("GSM-7", 164, 2)


def test_one_non_gsm_character_switches_to_ucs2():
    result = count_segments("Bonjour Zoë 😊")
    assert result.encoding == "UCS-2"
    assert result.units == 14  # the emoji takes two UTF-16 units
    assert count_segments("ł" * 70).segments == 1
    assert count_segments("ł" * 71).segments == 2
    assert count_segments("ł" * 134).segments == 2
    assert count_segments("ł" * 135).segments == 3


def test_emoji_pair_is_not_split():
    # 66 units then an emoji (2 units) would cross 67: the emoji starts the next segment.
    assert count_segments("ł" * 66 + "😊" + "ł" * 3).segments == 2
    assert count_segments("ł" * 66 + "😊" + "ł" * 67).segments == 3


def test_accented_latin_in_gsm7_stays_gsm7():
    assert count_segments("Livrée à Göteborg? Ñandu, Äpfel, Müller, Ærø, §5").encoding == "GSM-7"
    assert count_segments("Noël").encoding == "UCS-2"  # ë is not in the GSM-7 alphabet
