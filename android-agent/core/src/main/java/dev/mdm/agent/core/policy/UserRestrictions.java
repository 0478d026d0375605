package dev.mdm.agent.core.policy;

import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.Set;

/**
 * The user restriction names (UserManager.DISALLOW_*) a Device Owner may add on Android 14. A name
 * outside this list is not a restriction Android knows: addUserRestriction would accept it and do
 * nothing, so the agent fails it by name instead of reporting it applied.
 */
public final class UserRestrictions {
    public static final Set<String> KNOWN = Collections.unmodifiableSet(new HashSet<>(Arrays.asList(
            "no_add_managed_profile", "no_add_user", "no_add_wifi_config", "no_adjust_volume", "no_airplane_mode",
            "no_ambient_display", "no_autofill", "no_bluetooth", "no_bluetooth_sharing", 
            "no_cellular_2g", "no_change_wifi_state", "no_config_bluetooth", "no_config_brightness",
            "no_config_cell_broadcasts", "no_config_credentials", "no_config_date_time", "no_config_default_apps",
            "no_config_locale", "no_config_location", "no_config_mobile_networks", 
            "no_config_screen_timeout", "no_config_tethering", "no_config_vpn", "no_config_wifi",
            "no_content_capture", "no_content_suggestions", "no_control_apps", "no_create_windows",
            "no_cross_profile_copy_paste", "no_data_roaming", "no_debugging_features", "no_factory_reset",
            "no_fun", "no_grant_admin", "no_install_apps", "no_install_unknown_sources",
            "no_install_unknown_sources_globally", "no_modify_accounts", 
            "no_network_reset", "no_outgoing_beam", "no_outgoing_calls", "no_physical_media",
            "no_printing", "no_remove_managed_profile", "no_remove_user", "no_safe_boot", "no_set_user_icon",
            "no_set_wallpaper", "no_share_location", "no_sharing_admin_configured_wifi",
            "no_sms", "no_system_error_dialogs", "no_ultra_wideband_radio", "no_uninstall_apps", "no_unified_password",
            "no_usb_file_transfer", "no_user_switch", "no_wifi_direct", "no_wifi_tethering", 
            "no_record_audio", "no_unmute_microphone", "no_camera", 
            "ensure_verify_apps", "disallow_camera_toggle", "disallow_microphone_toggle",
            "disallow_config_private_dns", "no_sharing_into_profile", "no_add_clone_profile")));

    private UserRestrictions() {}
}
