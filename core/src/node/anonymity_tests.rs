#![cfg(feature = "anonymity")]

use super::anonymity::Anonymity;
use super::NodeConfig;

#[test]
fn off_turns_every_defence_off() {
    let config = Anonymity::Off.apply(Anonymity::Strict.apply(NodeConfig::default()));
    assert!(!config.cover.is_on());
    assert!(!config.shaping.is_on());
    assert_eq!(config.extra_path_relays, 0);
    assert_eq!(config.message_padding, super::MessagePadding::None);
    assert_eq!(config.link.padding, crate::link::LinkPadding::NONE);
}

#[test]
fn each_preset_is_at_least_as_strict_as_the_one_before() {
    let [off, default, strict] = Anonymity::ALL.map(|a| a.apply(NodeConfig::default()));
    assert!(off.cover.budget <= default.cover.budget);
    assert!(default.cover.budget <= strict.cover.budget);
    assert!(default.cover.front_cells <= strict.cover.front_cells);
    assert!(default.cover.is_on() && strict.cover.is_on());
    assert!(strict.shaping.is_on());
    assert!(off.extra_path_relays <= strict.extra_path_relays);
}

#[test]
fn presets_are_named_as_in_the_configuration_file() {
    for preset in Anonymity::ALL {
        assert_eq!(preset.name().parse::<Anonymity>(), Ok(preset));
    }
    assert!("paranoid".parse::<Anonymity>().is_err());
    assert_eq!(Anonymity::default(), Anonymity::Default);
}
