/* placeholder */ typedef int eng_placeholder_eng_json;
